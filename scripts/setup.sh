#!/usr/bin/env bash
# Installs what building Bansos Ledger needs on a fresh Debian/Ubuntu machine: clang and
# libclang (the rocksdb crate generates its bindings with them) and a Rust toolchain.
set -euo pipefail

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
# The demo script talks to the nodes' HTTP API with curl.
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The interop test checks the log with Go's own tlog and note packages (golang.org/x/mod).
command -v go >/dev/null 2>&1 || need_apt+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need_apt+=(golang-golang-x-mod-dev)
# The browser test drives headless Chromium through Debian's own Python and Selenium.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
/usr/bin/python3 -c "import selenium" >/dev/null 2>&1 || need_apt+=(python3-selenium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} (clang and libclang build RocksDB; curl is used by the demo; Go checks the log in a test; Chromium runs the explorer's browser test)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
