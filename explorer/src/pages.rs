//! The explorer's HTML: server-rendered, mobile-first, Bahasa Indonesia by default with
//! English, working without JavaScript. The one script ([`VERIFY_JS`]) only adds the
//! verification: it checks inclusion proofs, totals proofs and the checkpoint's validator
//! signatures with WebCrypto (SHA-256, Ed25519) and says plainly when the browser cannot.
//!
//! Every function here takes what the node read from the ledger and returns markup; none
//! reads a clock, a socket or a file.

pub use maud::Markup;
use maud::{html, PreEscaped, DOCTYPE};
use proto::api::{
    AnomalyCountsJson, BlockSummaryJson, MonthJson, ProgramPeriodsJson, RegionStatsJson,
    TotalsJson, TotalsValueJson, TrackJson, TrackStepJson, TxState, TxStatusJson,
};
use serde::Serialize;

use crate::suppress::K_MIN;

/// The verification script, served at `/static/verify.js`.
pub const VERIFY_JS: &str = include_str!("../static/verify.js");
/// Where the script is served; the name carries a version so it may be cached for ever.
pub const VERIFY_JS_PATH: &str = "/static/verify-v1.js";
/// The chain browser's live-update script, served at [`LIVE_JS_PATH`].
pub const LIVE_JS: &str = include_str!("../static/live.js");
pub const LIVE_JS_PATH: &str = "/static/live-v1.js";

/// The page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    /// From the `lang` query parameter: English only when asked for.
    pub fn from_query(lang: Option<&str>) -> Lang {
        match lang {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    fn pick(self, id: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }
}

/// The checkpoint keys a browser checks signatures with: each validator's vkey and power.
#[derive(Clone, Debug, Serialize)]
pub struct TrustedKeys {
    pub origin: String,
    pub validators: Vec<(String, u64)>,
}

/// What a tracking-code lookup came to.
pub enum Lookup {
    /// No code entered yet.
    Empty,
    /// The code does not parse (`message` says why).
    Malformed(String),
    /// The check symbol fails: a typo.
    Mistyped,
    /// Well-formed, but nothing is recorded under it.
    Unknown,
    RateLimited,
    Found(Box<TrackJson>),
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fafafa}
header,main,footer{max-width:46rem;margin:0 auto;padding:0 .75rem}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;padding-top:.5rem;border-bottom:1px solid #ccc}
header b{font-size:1.1rem}nav a{margin-right:.75rem}a{color:#0645ad}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input,select{width:100%;font:inherit;padding:.5rem;border:2px solid #555;border-radius:4px;text-transform:uppercase}
select{text-transform:none}
button{font:inherit;margin-top:.5rem;padding:.5rem 1.25rem;background:#0b5394;color:#fff;border:0;border-radius:4px}
:focus-visible{outline:3px solid #e69f00;outline-offset:2px}
.msg{padding:.75rem;border-left:4px solid #b45f06;background:#fff4e5;margin:1rem 0}
ol.steps{list-style:none;padding:0}ol.steps li{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.5rem .75rem;margin:.5rem 0}
.date{color:#444;font-size:.9rem}.v{font-size:.9rem;font-weight:600}.v.ok{color:#1b6e20}.v.bad{color:#a00}.v.na{color:#555}
table{width:100%;border-collapse:collapse;font-size:.9rem}th,td{text-align:right;padding:.25rem;border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}
.sum{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}.sum div{background:#fff;border:1px solid #ddd;padding:.5rem}.sum b{display:block;font-size:1.1rem}
svg{width:100%;height:auto}small{color:#444}
.scroll{overflow-x:auto}dl.flags dd{margin:0 0 .5rem 0}td{white-space:nowrap}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
"#;

fn page(lang: Lang, title: &str, here: &str, body: Markup, data: Option<String>) -> Markup {
    page_with(lang, title, here, body, data, None)
}

/// A page; `data` is the proof data the verification script reads, `script` another script
/// (the chain browser's live updates).
fn page_with(
    lang: Lang,
    title: &str,
    here: &str,
    body: Markup,
    data: Option<String>,
    script: Option<&str>,
) -> Markup {
    let other = match lang {
        Lang::Id => ("en", "English"),
        Lang::En => ("id", "Bahasa Indonesia"),
    };
    let switch = switch_url(here, other.0);
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " — Bansos Ledger" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    b { "Bansos Ledger" }
                    nav aria-label=(lang.pick("Menu utama", "Main menu")) {
                        a href=(with_lang("/", lang)) { (lang.pick("Bantuan saya", "My aid")) }
                        a href=(with_lang("/wilayah", lang)) { (lang.pick("Wilayah", "Regions")) }
                        a href=(with_lang("/blok", lang)) { (lang.pick("Blok", "Blocks")) }
                        a href=(switch) hreflang=(other.0) lang=(other.0) { (other.1) }
                    }
                }
                main { (body) }
                footer {
                    p { small { (lang.pick(
                        "Tidak ada nama, NIK atau nomor rekening di sini. Angka di bawah 10 penerima tidak ditampilkan.",
                        "No names, identity numbers or account numbers here. Figures under 10 beneficiaries are not shown.")) } }
                }
                @if let Some(data) = data {
                    script type="application/json" id="bukti" { (PreEscaped(data)) }
                    script src=(VERIFY_JS_PATH) defer {}
                }
                @if let Some(script) = script {
                    script src=(script) defer {}
                }
            }
        }
    }
}

/// `path?query` with `lang` set to `to`.
fn switch_url(here: &str, to: &str) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    let lang = format!("lang={to}");
    if to != "id" {
        pairs.push(&lang);
    }
    if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

fn with_lang(path: &str, lang: Lang) -> String {
    match lang {
        Lang::Id => path.to_owned(),
        Lang::En => format!("{path}?lang=en"),
    }
}

/// JSON for a `<script type="application/json">` block: `<` escaped so that no text in it
/// can close the element.
fn script_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .expect("plain data serialises")
        .replace('<', "\\u003c")
}

/// The lookup page (`/`), with the result of a lookup when a code was given.
pub fn lookup_page(
    lang: Lang,
    here: &str,
    code: &str,
    lookup: &Lookup,
    keys: &TrustedKeys,
) -> Markup {
    let data = match lookup {
        Lookup::Found(track) => Some(script_json(&serde_json::json!({
            "kind": "track", "lang": lang.code(), "keys": keys, "track": track,
        }))),
        _ => None,
    };
    let body = html! {
        h1 { (lang.pick("Cek bantuan saya", "Check my aid")) }
        form method="get" action="/" {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            label for="kode" { (lang.pick("Kode lacak (di kartu KKS atau SMS)", "Tracking code (on the KKS card or in the SMS)")) }
            input id="kode" name="kode" value=(code) autocomplete="off" autocapitalize="characters"
                spellcheck="false" placeholder="BNS-XXX-XXX-XXX-XXX-XXX-XXX-XXX" aria-describedby="kode-help";
            small id="kode-help" { (lang.pick("Huruf besar atau kecil sama saja; tanda hubung boleh dilewati.", "Upper or lower case; hyphens may be left out.")) }
            br;
            button type="submit" { (lang.pick("Cek", "Check")) }
        }
        (lookup_result(lang, code, lookup))
    };
    page(lang, lang.pick("Bantuan saya", "My aid"), here, body, data)
}

fn lookup_result(lang: Lang, code: &str, lookup: &Lookup) -> Markup {
    let message = |text: &str| html! { p.msg role="alert" { (text) } };
    match lookup {
        Lookup::Empty => html! {},
        Lookup::Malformed(_) => message(lang.pick(
            "Ini bukan kode lacak. Kode lacak terdiri dari BNS dan 7 kelompok berisi 3 huruf atau angka, misalnya BNS-7K3-Q9X-WDM-2PA-QR4-THZ-8NC.",
            "This is not a tracking code. A tracking code is BNS followed by 7 groups of 3 letters or digits, such as BNS-7K3-Q9X-WDM-2PA-QR4-THZ-8NC.")),
        Lookup::Mistyped => message(lang.pick(
            "Sepertinya ada salah ketik: huruf terakhir tidak cocok dengan yang lain. Periksa lagi kode di kartu atau SMS.",
            "This looks like a typo: the last symbol does not match the others. Check the code on the card or in the SMS again.")),
        Lookup::Unknown => message(lang.pick(
            "Tidak ada bantuan tercatat dengan kode ini. Periksa kodenya, atau tanyakan ke kantor desa atau pendamping.",
            "No aid is recorded under this code. Check the code, or ask the village office or your facilitator.")),
        Lookup::RateLimited => message(lang.pick(
            "Terlalu banyak pencarian dari jaringan ini. Tunggu sebentar lalu coba lagi.",
            "Too many lookups from this network. Wait a moment and try again.")),
        Lookup::Found(track) => timeline(lang, code, track),
    }
}

fn timeline(lang: Lang, code: &str, track: &TrackJson) -> Markup {
    html! {
        h2 { (lang.pick("Riwayat bantuan ", "Aid history ")) (track.program) }
        p { small id="v-summary" class="v na" {
            (lang.pick("Pemeriksaan bukti di peramban belum berjalan (perlu JavaScript).",
                       "The proofs have not been checked in this browser (JavaScript is needed)."))
        } }
        ol.steps {
            @for (i, step) in track.steps.iter().enumerate() {
                li {
                    (step_sentence(lang, step)) br;
                    span.date { (date_text(lang, &step.time)) }
                    " · "
                    span.v.na id=(format!("v-{i}")) data-step=(i) {
                        @if step.path.is_some() { (lang.pick("tercatat di log", "recorded in the log")) }
                        @else { (lang.pick("menunggu checkpoint berikutnya", "awaiting the next checkpoint")) }
                    }
                    @if step.path.is_some() {
                        " · "
                        a href=(format!("/v1/track/{code}/proof/{}", step.log_index)) download {
                            (lang.pick("unduh bukti", "download proof"))
                        }
                    }
                }
            }
        }
        p { small { (lang.pick(
            "Setiap bukti dapat diperiksa sendiri tanpa mempercayai situs ini: bansos audit check-proof langkah.tlog-proof --policy tlog-policy",
            "Each proof can be checked without trusting this site: bansos audit check-proof langkah.tlog-proof --policy tlog-policy")) } }
    }
}

/// One step in plain language: what happened, by whom, and the amount.
pub fn step_sentence(lang: Lang, step: &TrackStepJson) -> String {
    let who = &step.institution;
    let amount = step.amount.map(|a| rupiah(lang, a)).unwrap_or_default();
    let program = step.program.clone().unwrap_or_default();
    let period = step.period.clone().unwrap_or_default();
    let outcome = step.outcome.as_deref().unwrap_or("");
    match (lang, step.kind.as_str()) {
        (Lang::Id, "proposed") => format!("Diusulkan oleh {who}"),
        (Lang::En, "proposed") => format!("Proposed by {who}"),
        (Lang::Id, "identity_checked") if outcome == "passed" => {
            format!("Data kependudukan cocok, diperiksa oleh {who}")
        }
        (Lang::En, "identity_checked") if outcome == "passed" => {
            format!("Identity record matched, checked by {who}")
        }
        (Lang::Id, "identity_checked") => {
            format!("Data kependudukan tidak cocok, diperiksa oleh {who}")
        }
        (Lang::En, "identity_checked") => {
            format!("Identity record did not match, checked by {who}")
        }
        (Lang::Id, "verified") => format!("Dinyatakan layak oleh {who}"),
        (Lang::En, "verified") => format!("Found eligible by {who}"),
        (Lang::Id, "rejected") => format!("Dinyatakan tidak layak oleh {who}"),
        (Lang::En, "rejected") => format!("Found not eligible by {who}"),
        (Lang::Id, "enrolled") => format!("Terdaftar sebagai penerima {program} oleh {who}"),
        (Lang::En, "enrolled") => format!("Enrolled in {program} by {who}"),
        (Lang::Id, "allocated") => {
            format!("Dialokasikan {amount} untuk {program} {period} oleh {who}")
        }
        (Lang::En, "allocated") => format!("{amount} allocated for {program} {period} by {who}"),
        (Lang::Id, "disbursed") => {
            format!("Sudah disalurkan {amount} ({program} {period}) oleh {who}")
        }
        (Lang::En, "disbursed") => format!("{amount} paid out ({program} {period}) by {who}"),
        (Lang::Id, "received") => format!("Penerimaan {program} {period} dikonfirmasi"),
        (Lang::En, "received") => format!("Receipt of {program} {period} confirmed"),
        (Lang::Id, "not_received") => format!("Dilaporkan belum diterima ({program} {period})"),
        (Lang::En, "not_received") => format!("Reported not received ({program} {period})"),
        (Lang::Id, "objection_filed") => format!("Sanggahan diajukan melalui {who}"),
        (Lang::En, "objection_filed") => format!("Objection filed through {who}"),
        (Lang::Id, "objection_resolved") if outcome == "upheld" => {
            format!("Sanggahan diterima oleh {who}")
        }
        (Lang::En, "objection_resolved") if outcome == "upheld" => {
            format!("Objection upheld by {who}")
        }
        (Lang::Id, "objection_resolved") => format!("Sanggahan ditolak oleh {who}"),
        (Lang::En, "objection_resolved") => format!("Objection dismissed by {who}"),
        (Lang::Id, "status_changed") => format!(
            "Status berubah: {} (oleh {who})",
            status_word(lang, outcome)
        ),
        (Lang::En, _) => format!("Status changed: {} (by {who})", status_word(lang, outcome)),
        (Lang::Id, _) => format!(
            "Status berubah: {} (oleh {who})",
            status_word(lang, outcome)
        ),
    }
}

fn status_word(lang: Lang, outcome: &str) -> &'static str {
    match outcome {
        "deceased" => lang.pick("meninggal dunia", "deceased"),
        "moved" => lang.pick("pindah domisili", "moved"),
        "graduated" => lang.pick("graduasi (mandiri)", "graduated"),
        "suspended" => lang.pick("ditangguhkan", "suspended"),
        "reinstated" => lang.pick("diaktifkan kembali", "reinstated"),
        "death_record_corrected" => lang.pick("data kematian dikoreksi", "death record corrected"),
        _ => lang.pick("lainnya", "other"),
    }
}

/// `12 Nov 2026` from an RFC 3339 time.
pub fn date_text(lang: Lang, rfc3339: &str) -> String {
    const ID: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des",
    ];
    const EN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parse = || -> Option<String> {
        let (y, rest) = rfc3339.split_once('-')?;
        let (m, rest) = rest.split_once('-')?;
        let d: u32 = rest.get(..2)?.parse().ok()?;
        let month = m.parse::<usize>().ok()?.checked_sub(1)?;
        let name = match lang {
            Lang::Id => ID.get(month)?,
            Lang::En => EN.get(month)?,
        };
        Some(format!("{d} {name} {y}"))
    };
    let day = parse().unwrap_or_else(|| rfc3339.to_owned());
    match lang {
        Lang::Id => format!("pada {day}"),
        Lang::En => format!("on {day}"),
    }
}

/// `Rp750.000` (Indonesian grouping) or `Rp750,000`.
pub fn rupiah(lang: Lang, amount: u64) -> String {
    let digits = amount.to_string();
    let separator = lang.pick(".", ",");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(c);
    }
    format!("Rp{out}")
}

/// A short amount for narrow tables: `Rp1,2 M` (miliar), `Rp345 jt` (juta), or in full
/// under a million; English `Rp1.2 bn`, `Rp345 m`.
pub fn rupiah_short(lang: Lang, amount: u64) -> String {
    let (unit, divisor) = match amount {
        1_000_000_000.. => (lang.pick("M", "bn"), 1_000_000_000u64),
        1_000_000.. => (lang.pick("jt", "m"), 1_000_000),
        _ => return rupiah(lang, amount),
    };
    let tenths = (u128::from(amount) * 10 / u128::from(divisor)) as u64;
    let (whole, fraction) = (tenths / 10, tenths % 10);
    let point = lang.pick(",", ".");
    if fraction == 0 || whole >= 100 {
        format!("Rp{whole} {unit}")
    } else {
        format!("Rp{whole}{point}{fraction} {unit}")
    }
}

/// A region page's place: which program period and region, for links.
pub struct RegionPlace<'a> {
    pub programs: &'a [ProgramPeriodsJson],
    /// Ancestors from the province down, with names: the breadcrumb.
    pub ancestors: Vec<(String, String)>,
}

/// The region dashboard (`/wilayah`).
pub fn region_page(
    lang: Lang,
    here: &str,
    place: &RegionPlace<'_>,
    totals: Option<&TotalsJson>,
    keys: &TrustedKeys,
) -> Markup {
    let data = totals.map(|t| {
        script_json(&serde_json::json!({
            "kind": "totals", "lang": lang.code(), "keys": keys, "totals": t,
        }))
    });
    let body = html! {
        h1 { (lang.pick("Bantuan per wilayah", "Aid by region")) }
        (program_links(lang, place.programs))
        @match totals {
            None => p.msg { (lang.pick("Pilih program dan periode.", "Choose a program and period.")) },
            Some(t) => (region_table(lang, place, t)),
        }
    };
    page(lang, lang.pick("Wilayah", "Regions"), here, body, data)
}

fn region_link(lang: Lang, program: &str, period: &str, region: Option<&str>) -> String {
    let mut url = format!("/wilayah?program={program}&periode={period}");
    if let Some(region) = region {
        url.push_str("&kode=");
        url.push_str(region);
    }
    if lang == Lang::En {
        url.push_str("&lang=en");
    }
    url
}

fn program_links(lang: Lang, programs: &[ProgramPeriodsJson]) -> Markup {
    html! {
        nav aria-label=(lang.pick("Program dan periode", "Program and period")) {
            @for program in programs {
                p {
                    b { (program.name) } ": "
                    @for period in &program.periods {
                        a href=(region_link(lang, &program.program, period, None)) { (period) } " "
                    }
                }
            }
        }
    }
}

fn region_table(lang: Lang, place: &RegionPlace<'_>, t: &TotalsJson) -> Markup {
    html! {
        nav aria-label=(lang.pick("Lokasi", "Location")) {
            a href=(region_link(lang, &t.program, &t.period, None)) { (t.program) " " (t.period) }
            @for (code, name) in &place.ancestors {
                " › " a href=(region_link(lang, &t.program, &t.period, Some(code))) { (name) }
            }
        }
        h2 { (t.name) }
        @match &t.totals {
            None => p.msg { (lang.pick(
                "Wilayah ini memiliki kurang dari 10 penerima (atau angkanya dapat dihitung dari angka lain), sehingga tidak ditampilkan.",
                "This region has fewer than 10 beneficiaries (or its figures could be worked out from others), so they are not shown.")) },
            Some(sum) => {
                (summary(lang, sum))
                p { small id="v-summary" class="v na" { (lang.pick(
                    "Bukti total belum diperiksa di peramban ini (perlu JavaScript).",
                    "The totals' proof has not been checked in this browser (JavaScript is needed).")) } }
                (bar_chart(lang, t))
                (rows_table(lang, t))
                @if let Some(stats) = &t.stats { (statistics(lang, stats)) }
                @if let Some(flags) = &t.anomalies { (anomalies(lang, flags)) }
            }
        }
    }
}

/// What each anomaly flag means and what a citizen can do, in one sentence each.
fn anomaly_text(lang: Lang, flag: &str) -> (&'static str, &'static str) {
    match flag {
        "allocated_not_disbursed" => (
            lang.pick("Dialokasikan lebih dari 30 hari tetapi belum disalurkan", "Allocated over 30 days ago, not yet paid"),
            lang.pick("Bantuan sudah ditetapkan tetapi belum dibayar; jika ini bantuan Anda, tanyakan ke bank penyalur atau ajukan sanggahan (usul-sanggah) di kantor desa.",
                      "Aid was granted but not paid; if it is yours, ask the paying bank or file an objection (usul-sanggah) at the village office."),
        ),
        "disbursed_not_confirmed" => (
            lang.pick("Disalurkan lebih dari 30 hari tetapi belum dikonfirmasi diterima", "Paid over 30 days ago, receipt not confirmed"),
            lang.pick("Uang tercatat dibayar tetapi belum ada yang mengonfirmasi terima; konfirmasikan lewat aplikasi atau pendamping.",
                      "The money is recorded as paid but nobody confirmed receiving it; confirm through the app or your facilitator."),
        ),
        "reported_not_received" => (
            lang.pick("Dilaporkan tidak diterima", "Reported not received"),
            lang.pick("Penerima atau pendamping menyatakan uangnya tidak sampai; laporan ini tetap tercatat dan dapat ditindaklanjuti lewat sanggahan.",
                      "The beneficiary or facilitator says the money did not arrive; the statement stays on record and can be followed up with an objection."),
        ),
        "objections_overdue" => (
            lang.pick("Sanggahan melewati batas 14 hari", "Objections past their 14-day deadline"),
            lang.pick("Sanggahan belum dijawab Pemda dalam 14 hari dan kini menjadi wewenang Kemensos; tanyakan kelanjutannya ke Dinas Sosial.",
                      "The Pemda has not answered within 14 days and the case now rests with Kemensos; ask the social affairs office for news."),
        ),
        "paid_after_death" => (
            lang.pick("Pembayaran setelah tercatat meninggal", "Payments after a recorded death"),
            lang.pick("Ada pembayaran yang tercatat setelah penerimanya dinyatakan meninggal; laporkan ke kantor desa bila Anda mengetahui kasusnya.",
                      "A payment was recorded after the beneficiary was declared dead; tell the village office if you know of the case."),
        ),
        _ => (
            lang.pick("Satu rekening untuk beberapa penerima", "One account for several beneficiaries"),
            lang.pick("Beberapa penerima dibayar ke rekening yang sama, tanda kemungkinan penyaluran lewat pihak lain; pastikan bantuan Anda masuk ke rekening Anda sendiri.",
                      "Several beneficiaries were paid into the same account, a sign aid may pass through someone else; make sure yours reaches your own account."),
        ),
    }
}

fn anomalies(lang: Lang, flags: &AnomalyCountsJson) -> Markup {
    let named = [
        ("allocated_not_disbursed", flags.allocated_not_disbursed),
        ("disbursed_not_confirmed", flags.disbursed_not_confirmed),
        ("reported_not_received", flags.reported_not_received),
        ("objections_overdue", flags.objections_overdue),
        ("paid_after_death", flags.paid_after_death),
        ("shared_account", flags.shared_account),
    ];
    html! {
        h3 { (lang.pick("Hal yang perlu ditanyakan", "Things to ask about")) }
        p { small { (lang.pick(
            "Jumlah kasus di wilayah ini untuk semua program, dihitung dari catatan pada blok terakhir. Tidak ada daftar nama.",
            "Number of cases in this region across all programs, counted from the records at the latest block. No lists of people.")) } }
        dl.flags {
            @for (flag, count) in named {
                @let (title, advice) = anomaly_text(lang, flag);
                dt { b { (count_text(lang, count)) } " · " (title) }
                dd { small { (advice) } }
            }
        }
    }
}

/// How long payment takes, open objections, and payments per month as a bar chart over
/// time (suppressed months drawn as a hatched stub marked "< 10").
fn statistics(lang: Lang, stats: &RegionStatsJson) -> Markup {
    html! {
        h3 { (lang.pick("Kecepatan penyaluran", "How fast aid is paid")) }
        dl.flags {
            dt { b { @match stats.median_days_to_payment {
                Some(days) => { (days) " " (lang.pick("hari", "days")) }
                None => { "–" }
            } } " · " (lang.pick("median dari alokasi sampai dibayar", "median from allocation to payment")) }
            dd { small { (lang.pick(
                "Separuh penerima dibayar dalam waktu ini atau lebih cepat. Tidak ditampilkan bila kurang dari 10 pembayaran.",
                "Half of the beneficiaries were paid within this time or sooner. Not shown for fewer than 10 payments.")) } }
            dt { b { (count_text(lang, stats.objections_open)) } " · " (lang.pick("sanggahan yang masih terbuka", "objections still open")) }
            dd { small { (lang.pick(
                "Sanggahan (usul-sanggah) atas alokasi program ini di wilayah ini, atau atas penerimanya, yang belum diputuskan.",
                "Objections (usul-sanggah) to this program's allocations here, or to their beneficiaries, not yet decided.")) } }
        }
        (month_chart(lang, &stats.months))
        p { small { (lang.pick(
            "Angka-angka ini dihitung simpul ini dari catatan yang sudah dikomit (mulai tinggi blok ",
            "These figures are computed by this node from committed records (from block height ")) (stats.computed_at_height) (lang.pick(
            "); median tidak dapat dibuktikan dengan pohon jumlah seperti total di atas.",
            "); a median cannot be proven by the sum tree the way the totals above are.")) } }
    }
}

/// Rupiah paid per month, as vertical bars.
fn month_chart(lang: Lang, months: &[MonthJson]) -> Markup {
    if months.is_empty() {
        return html! {};
    }
    let most = months
        .iter()
        .filter_map(|m| m.disbursed)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = 320usize;
    let slot = (width - 10) / months.len().max(1);
    let bar = slot.saturating_sub(4).clamp(2, 40);
    let (top, chart) = (14usize, 110usize);
    html! {
        figure {
            svg viewBox=(format!("0 0 {width} {}", top + chart + 30)) role="img"
                aria-label=(lang.pick("Rupiah disalurkan per bulan", "Rupiah paid per month")) {
                text x="0" y="10" font-size="10" { (lang.pick("Disalurkan per bulan (tertinggi ", "Paid per month (highest ")) (rupiah_short(lang, most)) ")" }
                @for (i, m) in months.iter().enumerate() {
                    @let x = 5 + i * slot;
                    @match m.disbursed {
                        Some(paid) => {
                            @let h = ((u128::from(paid) * chart as u128) / u128::from(most)).max(1) as usize;
                            rect x=(x) y=(top + chart - h) width=(bar) height=(h) fill="#56b4e9" {
                                title { (m.month) ": " (rupiah(lang, paid)) }
                            }
                        }
                        None => {
                            rect x=(x) y=(top + chart - 12) width=(bar) height="12" fill="none" stroke="#888" stroke-dasharray="2 2" {
                                title { (m.month) ": < " (K_MIN) " " (lang.pick("pembayaran", "payments")) }
                            }
                        }
                    }
                    @if months.len() <= 12 || i % 2 == 0 {
                        text x=(x) y=(top + chart + 12) font-size="9" { (m.month.get(2..).unwrap_or(&m.month)) }
                    }
                }
                text x="0" y=(top + chart + 26) font-size="9" {
                    (lang.pick("kotak putus-putus: < 10 pembayaran, tidak ditampilkan", "dashed box: < 10 payments, not shown"))
                }
            }
        }
    }
}

fn summary(lang: Lang, sum: &TotalsValueJson) -> Markup {
    html! {
        div.sum {
            div { (lang.pick("Penerima", "Beneficiaries")) b { (count_text(lang, sum.beneficiaries)) } }
            div { (lang.pick("Dialokasikan", "Allocated")) b { (rupiah(lang, sum.allocated)) } }
            div { (lang.pick("Disalurkan", "Disbursed")) b { (rupiah(lang, sum.disbursed)) } }
            div { (lang.pick("Diterima (dikonfirmasi)", "Received (confirmed)")) b { (rupiah(lang, sum.confirmed)) } }
        }
    }
}

fn count_text(lang: Lang, n: u64) -> String {
    rupiah(lang, n).trim_start_matches("Rp").to_owned()
}

fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        (u128::from(part) * 100 / u128::from(whole)) as u64
    }
}

/// Per published row: disbursed and confirmed as a share of allocated, as horizontal bars.
fn bar_chart(lang: Lang, t: &TotalsJson) -> Markup {
    let shown: Vec<_> = t
        .rows
        .iter()
        .filter_map(|r| r.totals.map(|v| (r, v)))
        .collect();
    if shown.is_empty() {
        return html! {};
    }
    let row_height = 22;
    let height = shown.len() * row_height + 24;
    html! {
        figure {
            svg viewBox=(format!("0 0 320 {height}")) role="img"
                aria-label=(lang.pick("Persentase disalurkan dan dikonfirmasi per wilayah", "Share disbursed and confirmed per region")) {
                @for (i, (row, v)) in shown.iter().enumerate() {
                    @let y = i * row_height;
                    @let paid = percent(v.disbursed, v.allocated);
                    @let confirmed = percent(v.confirmed, v.allocated);
                    text x="0" y=(y + 14) font-size="11" { (truncate(&row.name, 16)) }
                    rect x="110" y=(y + 3) width="200" height="14" fill="#e6e6e6" {}
                    rect x="110" y=(y + 3) width=(paid * 2) height="14" fill="#56b4e9" {}
                    rect x="110" y=(y + 8) width=(confirmed * 2) height="4" fill="#0b5394" {}
                    text x="312" y=(y + 14) font-size="10" text-anchor="end" { (paid) "%" }
                }
                text x="110" y=(height - 4) font-size="10" {
                    (lang.pick("biru muda: disalurkan · garis: dikonfirmasi", "light: disbursed · line: confirmed"))
                }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max - 1).chain(['…']).collect()
    }
}

fn rows_table(lang: Lang, t: &TotalsJson) -> Markup {
    let under = format!("< {K_MIN}");
    html! {
        div.scroll { table {
            caption.visually-hidden { (lang.pick("Rincian per wilayah", "Breakdown by region")) }
            thead { tr {
                th scope="col" { (lang.pick("Wilayah", "Region")) }
                th scope="col" { (lang.pick("Penerima", "Benef.")) }
                th scope="col" { (lang.pick("Dialokasikan", "Allocated")) }
                th scope="col" { (lang.pick("Disalurkan", "Disbursed")) }
                th scope="col" { (lang.pick("Dikonfirmasi", "Confirmed")) }
            } }
            tbody {
                @for (i, row) in t.rows.iter().enumerate() {
                    tr {
                        th scope="row" {
                            @if row.at_region_itself { (lang.pick("(tercatat di wilayah ini)", "(recorded at this region)")) }
                            @else if row.totals.is_some() {
                                a href=(region_link(lang, &t.program, &t.period, Some(&row.region))) { (row.name) }
                            } @else { (row.name) }
                            " " span.v.na id=(format!("v-row-{i}")) {}
                        }
                        @match row.totals {
                            Some(v) => {
                                td { (count_text(lang, v.beneficiaries)) }
                                td title=(rupiah(lang, v.allocated)) { (rupiah_short(lang, v.allocated)) }
                                td title=(rupiah(lang, v.disbursed)) { (rupiah_short(lang, v.disbursed)) }
                                td title=(rupiah(lang, v.confirmed)) { (rupiah_short(lang, v.confirmed)) }
                            }
                            None => { td { (under) } td { "–" } td { "–" } td { "–" } }
                        }
                    }
                }
            }
        } }
    }
}

/// What the chain browser (`/blok`) shows.
pub struct BlockPage<'a> {
    /// The height or hash searched for ("" for none).
    pub search: &'a str,
    /// `None` without a search; `Some(None)` when no block matches it.
    pub found: Option<Option<&'a BlockSummaryJson>>,
    /// The transaction hash asked about ("" for none).
    pub tx: &'a str,
    /// `None` without a question; `Some(None)` when the hash is malformed.
    pub tx_status: Option<Option<&'a TxStatusJson>>,
    /// The latest blocks, newest first.
    pub latest: &'a [BlockSummaryJson],
}

/// The chain browser.
pub fn block_page(lang: Lang, here: &str, page_data: &BlockPage<'_>) -> Markup {
    let body = html! {
        h1 { (lang.pick("Blok", "Blocks")) }
        form method="get" action="/blok" {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            label for="cari" { (lang.pick("Tinggi atau hash blok", "Block height or hash")) }
            input id="cari" name="cari" value=(page_data.search) autocomplete="off" style="text-transform:none";
            button type="submit" { (lang.pick("Cari blok", "Find block")) }
        }
        form method="get" action="/blok" {
            @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
            label for="tx" { (lang.pick("Hash transaksi", "Transaction hash")) }
            input id="tx" name="tx" value=(page_data.tx) autocomplete="off" style="text-transform:none";
            button type="submit" { (lang.pick("Cek status", "Check status")) }
        }
        @if let Some(status) = page_data.tx_status { (tx_status_text(lang, status)) }
        @match page_data.found {
            Some(Some(block)) => { h2 { (lang.pick("Blok ", "Block ")) (block.height) } (block_detail(lang, block)) },
            Some(None) => p.msg role="alert" { (lang.pick("Tidak ada blok dengan tinggi atau hash itu.", "No block has that height or hash.")) },
            None => {},
        }
        h2 { (lang.pick("Blok terbaru", "Latest blocks")) }
        div.scroll { table {
            thead { tr {
                th scope="col" { (lang.pick("Tinggi", "Height")) }
                th scope="col" { (lang.pick("Waktu (UTC)", "Time (UTC)")) }
                th scope="col" { (lang.pick("Pengusul", "Proposer")) }
                th scope="col" { (lang.pick("Penanda tangan", "Signers")) }
                th scope="col" { (lang.pick("Transaksi", "Transactions")) }
                th scope="col" { (lang.pick("Jenis", "Kinds")) }
            } }
            tbody id="blocks" {
                @for b in page_data.latest {
                    tr {
                        th scope="row" { a href=(format!("/blok?cari={}{}", b.height, if lang == Lang::En { "&lang=en" } else { "" })) { (b.height) } }
                        td { (b.time.get(11..19).unwrap_or(&b.time)) }
                        td { (b.proposer) }
                        td { (b.signers.len()) }
                        td { (b.tx_count) }
                        td { (kinds_text(b)) }
                    }
                }
            }
        } }
    };
    // The live updates are the extra: the page is complete without them.
    page_with(
        lang,
        lang.pick("Blok", "Blocks"),
        here,
        body,
        None,
        Some(LIVE_JS_PATH),
    )
}

fn kinds_text(block: &BlockSummaryJson) -> String {
    block
        .by_type
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn block_detail(lang: Lang, b: &BlockSummaryJson) -> Markup {
    html! {
        dl {
            dt { "Hash" } dd { code style="word-break:break-all" { (b.hash) } }
            dt { (lang.pick("Waktu", "Time")) } dd { (b.time) }
            dt { (lang.pick("Diusulkan oleh", "Proposed by")) } dd { (b.proposer) }
            dt { (lang.pick("Sertifikat ditandatangani oleh", "Certificate signed by")) } dd { (b.signers.join(", ")) }
            dt { (lang.pick("Transaksi menurut jenis", "Transactions by kind")) } dd { (kinds_text(b)) }
            dt { (lang.pick("Transaksi menurut kabupaten/kota", "Transactions by regency")) }
            dd { (b.by_regency.iter().map(|(r, n)| format!("{r}: {n}")).collect::<Vec<_>>().join(", ")) }
            dt { (lang.pick("Dialokasikan / disalurkan", "Allocated / disbursed")) }
            dd { (rupiah(lang, b.allocated)) " / " (rupiah(lang, b.disbursed)) }
        }
    }
}

fn tx_status_text(lang: Lang, status: Option<&TxStatusJson>) -> Markup {
    let text = match status {
        None => lang
            .pick(
                "Itu bukan hash transaksi (64 karakter heksadesimal).",
                "That is not a transaction hash (64 hex characters).",
            )
            .to_owned(),
        Some(s) => match (s.status, s.height) {
            (TxState::Committed, Some(h)) => format!(
                "{} {h}",
                lang.pick("Tercatat di blok", "Committed at height")
            ),
            (TxState::Pending, _) => lang
                .pick(
                    "Menunggu dimasukkan ke blok.",
                    "Pending: waiting for a block.",
                )
                .to_owned(),
            (TxState::Rejected, _) => lang
                .pick("Ditolak oleh node ini.", "Refused by this node.")
                .to_owned(),
            _ => lang
                .pick(
                    "Transaksi ini tidak dikenal node ini.",
                    "This node does not know this transaction.",
                )
                .to_owned(),
        },
    };
    html! { p.msg role="status" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_dates_read_as_people_write_them() {
        assert_eq!(rupiah(Lang::Id, 750_000), "Rp750.000");
        assert_eq!(rupiah(Lang::En, 1_234_567), "Rp1,234,567");
        assert_eq!(rupiah(Lang::Id, 0), "Rp0");
        assert_eq!(rupiah_short(Lang::Id, 1_250_000_000), "Rp1,2 M");
        assert_eq!(rupiah_short(Lang::En, 345_600_000), "Rp345 m");
        assert_eq!(rupiah_short(Lang::Id, 9_750_000), "Rp9,7 jt");
        assert_eq!(rupiah_short(Lang::Id, 750_000), "Rp750.000");
        assert_eq!(
            date_text(Lang::Id, "2026-11-12T03:00:00.000Z"),
            "pada 12 Nov 2026"
        );
        assert_eq!(
            date_text(Lang::En, "2026-08-02T03:00:00.000Z"),
            "on 2 Aug 2026"
        );
    }

    #[test]
    fn the_language_switch_keeps_the_query() {
        assert_eq!(switch_url("/?kode=BNS-1", "en"), "/?kode=BNS-1&lang=en");
        assert_eq!(switch_url("/?kode=BNS-1&lang=en", "id"), "/?kode=BNS-1");
        assert_eq!(switch_url("/wilayah", "en"), "/wilayah?lang=en");
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let text = script_json(&"</script><script>alert(1)</script>");
        assert!(!text.contains("</"));
    }
}
