//! The demo regions (DESIGN §10): Kabupaten Banyuwangi with its 25 kecamatan and Kota
//! Mataram with its 6, and a few villages under each.
//!
//! The kecamatan names are real. The codes follow the Kemendagri shape (province.regency.
//! district.village) but are illustrative, and so are the village names where a real one
//! is not listed here: this is synthetic demo data, not a reference list.

use ledger::genesis::Region;
use ledger::types::RegionCode;

/// Kabupaten Banyuwangi.
pub const BANYUWANGI: &str = "35.10";
/// Kota Mataram.
pub const MATARAM: &str = "52.71";

/// Banyuwangi's kecamatan, with up to three village names each (illustrative where the
/// list runs out).
const BANYUWANGI_DISTRICTS: &[(&str, &[&str])] = &[
    ("Pesanggaran", &["Sumberagung", "Kandangan", "Pesanggaran"]),
    ("Siliragung", &["Siliragung", "Seneporejo", "Kesilir"]),
    ("Bangorejo", &["Bangorejo", "Sambirejo", "Kebondalem"]),
    ("Purwoharjo", &["Purwoharjo", "Grajagan", "Sidorejo"]),
    ("Tegaldlimo", &["Tegaldlimo", "Kedungasri", "Kendalrejo"]),
    ("Muncar", &["Kedungrejo", "Tembokrejo", "Sumberberas"]),
    ("Cluring", &["Cluring", "Benculuk", "Tampo"]),
    ("Gambiran", &["Gambiran", "Jajag", "Yosomulyo"]),
    ("Tegalsari", &["Tegalsari", "Karangdoro", "Dasri"]),
    ("Glenmore", &["Glenmore", "Karangharjo", "Sepanjang"]),
    (
        "Kalibaru",
        &["Kalibaru Wetan", "Kalibaru Manis", "Kalibaru Kulon"],
    ),
    ("Genteng", &["Genteng Kulon", "Genteng Wetan", "Kembiritan"]),
    ("Srono", &["Srono", "Sukomaju", "Parijatah Kulon"]),
    ("Rogojampi", &["Rogojampi", "Gitik", "Karangbendo"]),
    ("Blimbingsari", &["Blimbingsari", "Bomo", "Kaligung"]),
    ("Kabat", &["Kabat", "Macan Putih", "Pendarungan"]),
    ("Singojuruh", &["Singojuruh", "Gumirih", "Alasmalang"]),
    ("Sempu", &["Sempu", "Jambewangi", "Karangsari"]),
    ("Songgon", &["Songgon", "Sumberarum", "Bayu"]),
    ("Glagah", &["Kemiren", "Olehsari", "Glagah"]),
    ("Licin", &["Licin", "Banjar", "Tamansari"]),
    ("Banyuwangi", &["Singonegaran", "Kepatihan", "Penganjuran"]),
    ("Giri", &["Giri", "Boyolangu", "Penataban"]),
    ("Kalipuro", &["Ketapang", "Bulusan", "Kelir"]),
    ("Wongsorejo", &["Wongsorejo", "Bangsring", "Alasbuluh"]),
];

/// Mataram's kecamatan and some of their kelurahan.
const MATARAM_DISTRICTS: &[(&str, &[&str])] = &[
    ("Ampenan", &["Ampenan Utara", "Ampenan Selatan", "Pejeruk"]),
    (
        "Sekarbela",
        &["Karang Pule", "Kekalik Jaya", "Tanjung Karang"],
    ),
    ("Mataram", &["Pagesangan", "Punia", "Pagutan"]),
    ("Selaparang", &["Rembiga", "Karang Baru", "Monjok"]),
    (
        "Cakranegara",
        &["Cakranegara Barat", "Cakranegara Timur", "Sayang-Sayang"],
    ),
    ("Sandubaya", &["Bertais", "Mandalika", "Dasan Cermen"]),
];

fn region(code: String, name: String) -> Option<Region> {
    RegionCode::new(code).ok().map(|code| Region { code, name })
}

/// Every demo region: provinces, the two regencies, their districts and villages.
pub fn demo_regions() -> Vec<Region> {
    let mut regions = Vec::new();
    regions.extend(region("35".into(), "Jawa Timur".into()));
    regions.extend(region("52".into(), "Nusa Tenggara Barat".into()));
    regions.extend(region(BANYUWANGI.into(), "Kabupaten Banyuwangi".into()));
    regions.extend(region(MATARAM.into(), "Kota Mataram".into()));
    // Village codes start with 2 for a desa and 1 for a kelurahan, as in Kemendagri codes.
    for (regency, districts, village_series) in [
        (BANYUWANGI, BANYUWANGI_DISTRICTS, 2000),
        (MATARAM, MATARAM_DISTRICTS, 1000),
    ] {
        for (d, (district, villages)) in districts.iter().enumerate() {
            let district_code = format!("{regency}.{:02}", d + 1);
            regions.extend(region(
                district_code.clone(),
                format!("Kecamatan {district}"),
            ));
            for (v, village) in villages.iter().enumerate() {
                let kind = if village_series == 2000 {
                    "Desa"
                } else {
                    "Kelurahan"
                };
                regions.extend(region(
                    format!("{district_code}.{}", village_series + v + 1),
                    format!("{kind} {village}"),
                ));
            }
        }
    }
    regions
}

/// The village-level codes of one regency.
pub fn villages_of(regions: &[Region], regency: &str) -> Vec<RegionCode> {
    let Ok(regency) = RegionCode::new(regency) else {
        return Vec::new();
    };
    regions
        .iter()
        .filter(|r| r.code.is_within(&regency) && r.code.as_str().matches('.').count() == 3)
        .map(|r| r.code.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_regions_cover_all_districts_named_in_the_brief() {
        let regions = demo_regions();
        let districts = regions
            .iter()
            .filter(|r| r.name.starts_with("Kecamatan"))
            .count();
        assert_eq!(districts, 25 + 6);
        assert_eq!(villages_of(&regions, BANYUWANGI).len(), 75);
        assert_eq!(villages_of(&regions, MATARAM).len(), 18);
        assert_eq!(regions.len(), 4 + 31 + 93);
    }
}
