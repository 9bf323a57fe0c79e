// tlogcheck verifies a Bansos Ledger node's transparency log with Go's own tlog and note
// packages (golang.org/x/mod/sumdb), code this project did not write:
//
//	tlogcheck NODE_URL GENESIS_JSON [--require-cosignature]
//
// It opens the node's latest checkpoint with the validators' note verifier keys from
// genesis and requires signatures of more than two thirds of them; reads the tree through
// the node's tiles (tlog checks every tile against the signed root); verifies the
// witnesses' cosignatures (c2sp.org/tlog-cosignature, implemented here from the spec with
// crypto/ed25519, since this version of note knows only Ed25519 signatures); checks inclusion
// proofs of leaves across the log and consistency proofs from earlier sizes, and compares
// the node's proofs with the ones tlog computes from the tiles. Exit 0 only if all holds.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type genesis struct {
	LogOrigin     string `json:"log_origin"`
	Organisations []struct {
		Validator *struct {
			CheckpointKey string `json:"checkpoint_key"`
		} `json:"validator"`
		WitnessKey string `json:"witness_key"`
	} `json:"organisations"`
}

// cosigner verifies tlog-cosignature/v1 lines: 8 bytes of big-endian timestamp, then an
// Ed25519 signature over "cosignature/v1\ntime <timestamp>\n" and the note text.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (c cosigner) Name() string    { return c.name }
func (c cosigner) KeyHash() uint32 { return c.hash }
func (c cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	signed := fmt.Sprintf("cosignature/v1\ntime %d\n%s", t, msg)
	return ed25519.Verify(c.key, []byte(signed), sig[8:])
}

// newCosigner parses a cosignature vkey: name+hex(key ID)+base64(0x04 || key), the key ID
// being the first four bytes of SHA-256(name || "\n" || 0x04 || key).
func newCosigner(vkey string) cosigner {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		fail("witness key %q is not name+id+key", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		fail("witness key %q is not a cosignature/v1 Ed25519 key", vkey)
	}
	id, err := hex.DecodeString(parts[1])
	if err != nil || len(id) != 4 {
		fail("witness key %q has a bad key ID", vkey)
	}
	digest := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if string(digest[:4]) != string(id) {
		fail("witness key %q: the key ID is not the key's", vkey)
	}
	return cosigner{parts[0], binary.BigEndian.Uint32(id), ed25519.PublicKey(raw[1:])}
}

type inclusion struct {
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Path     []string `json:"path"`
	Root     string   `json:"root"`
}

type consistency struct {
	First      int64    `json:"first"`
	Second     int64    `json:"second"`
	Path       []string `json:"path"`
	FirstRoot  string   `json:"first_root"`
	SecondRoot string   `json:"second_root"`
}

var base string

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func get(path string) []byte {
	resp, err := http.Get(base + path)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		fail("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	return body
}

func hash(b64 string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != tlog.HashSize {
		fail("not a base64 SHA-256 hash: %q", b64)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func hashes(list []string) []tlog.Hash {
	out := make([]tlog.Hash, len(list))
	for i, s := range list {
		out[i] = hash(s)
	}
	return out
}

// tiles fetches C2SP tiles: Go's paths are tile/H/L/N; C2SP's drop the fixed height 8.
type tiles struct{}

func (tiles) Height() int { return 8 }

func (tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		path := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		out[i] = get("/" + path)
	}
	return out, nil
}

func (tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func main() {
	requireCosignature := len(os.Args) == 4 && os.Args[3] == "--require-cosignature"
	if len(os.Args) != 3 && !requireCosignature {
		fail("usage: tlogcheck NODE_URL GENESIS_JSON [--require-cosignature]")
	}
	base = strings.TrimRight(os.Args[1], "/")
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail("%v", err)
	}
	var g genesis
	if err := json.Unmarshal(raw, &g); err != nil {
		fail("genesis: %v", err)
	}
	var verifiers []note.Verifier
	for _, org := range g.Organisations {
		if org.Validator == nil {
			continue
		}
		v, err := note.NewVerifier(org.Validator.CheckpointKey)
		if err != nil {
			fail("checkpoint key %q: %v", org.Validator.CheckpointKey, err)
		}
		verifiers = append(verifiers, v)
	}
	validators := len(verifiers)
	for _, org := range g.Organisations {
		if org.WitnessKey != "" {
			verifiers = append(verifiers, newCosigner(org.WitnessKey))
		}
	}

	// The checkpoint: a signed note; more than two thirds of the validators must sign.
	msg := get("/v1/checkpoint")
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail("the checkpoint does not open: %v\n%s", err, msg)
	}
	signed, cosigned := 0, 0
	for _, sig := range n.Sigs {
		if sig.Name == g.LogOrigin {
			signed++
		} else {
			cosigned++
		}
	}
	if 3*signed <= 2*validators {
		fail("the checkpoint has %d of %d validator signatures", signed, validators)
	}
	if requireCosignature && cosigned == 0 {
		fail("the checkpoint carries no witness cosignature:\n%s", msg)
	}
	// c2sp.org/tlog-checkpoint: origin, size, root, then optional extension lines (this
	// log writes one, "bansos-totals <base64>", which the log check does not need).
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != g.LogOrigin {
		fail("the checkpoint text is not origin/size/root for %q: %q", g.LogOrigin, n.Text)
	}
	for _, extension := range lines[3:] {
		if extension == "" {
			fail("an empty extension line in %q", n.Text)
		}
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 1 {
		fail("bad tree size %q", lines[1])
	}
	tree := tlog.Tree{N: size, Hash: hash(lines[2])}

	// The tiles: tlog reads the tree through them and checks each against the root.
	reader := tlog.TileHashReader(tree, tiles{})
	root, err := tlog.TreeHash(size, reader)
	if err != nil || root != tree.Hash {
		fail("the tiles do not give the signed root: %v", err)
	}

	// Inclusion proofs from the node, and the same proofs computed from the tiles.
	indexes := []int64{0, size / 3, size / 2, size - 1}
	for _, i := range indexes {
		var p inclusion
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", i, size)), &p); err != nil {
			fail("inclusion proof: %v", err)
		}
		leaf := hash(p.LeafHash)
		if err := tlog.CheckRecord(hashes(p.Path), size, tree.Hash, i, leaf); err != nil {
			fail("inclusion proof of leaf %d in %d does not verify: %v", i, size, err)
		}
		mine, err := tlog.ProveRecord(size, i, reader)
		if err != nil {
			fail("proving leaf %d from tiles: %v", i, err)
		}
		if len(mine) != len(p.Path) {
			fail("leaf %d: the node's proof differs from tlog's", i)
		}
		for k := range mine {
			if mine[k] != hash(p.Path[k]) {
				fail("leaf %d: the node's proof differs from tlog's at %d", i, k)
			}
		}
	}

	// Consistency proofs from earlier sizes to the signed one.
	for _, first := range []int64{1, size / 2, size - 1, size} {
		if first < 1 {
			continue
		}
		var p consistency
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/proof/consistency?first=%d&second=%d", first, size)), &p); err != nil {
			fail("consistency proof: %v", err)
		}
		if hash(p.SecondRoot) != tree.Hash {
			fail("the consistency proof's second root is not the signed root")
		}
		if err := tlog.CheckTree(hashes(p.Path), size, tree.Hash, first, hash(p.FirstRoot)); err != nil {
			fail("consistency proof %d -> %d does not verify: %v", first, size, err)
		}
		firstRoot, err := tlog.TreeHash(first, reader)
		if err != nil || firstRoot != hash(p.FirstRoot) {
			fail("the root at %d from the tiles is not the node's: %v", first, err)
		}
	}
	fmt.Printf("ok: %s size %d, %d of %d validator signatures, %d witness cosignatures, tiles, %d inclusion and 4 consistency proofs verified by golang.org/x/mod/sumdb\n",
		g.LogOrigin, size, signed, validators, cosigned, len(indexes))
}
