//! Statistical disclosure control for published totals (DESIGN §4): no published cell
//! counts fewer than [`K_MIN`] beneficiaries, and none can be recovered by subtracting the
//! published cells of a table from its published total.
//!
//! A table is a region's total and its rows (sub-regions, and the records kept at the region
//! itself). Three rules, applied top-down from the program period to the village:
//!
//! 1. **Primary:** a row under `K_MIN` beneficiaries is suppressed.
//! 2. **Complementary:** while the suppressed rows of a published table are exactly one, or
//!    together count fewer than `K_MIN` (their sum is the table total minus the published
//!    rows), the smallest published row is suppressed too.
//! 3. **Inheritance:** a suppressed row's own table is not published at all: its total and
//!    every row under it are suppressed, since publishing them would give the suppressed
//!    row back by addition.
//!
//! All measures of a row (count and the three amounts) are published or suppressed together.

/// The fewest beneficiaries a published cell may count.
pub const K_MIN: u64 = 10;

/// Which rows of a table to suppress, given the rows' beneficiary counts and whether the
/// table's own total is published (rule 3: if not, every row is suppressed).
pub fn suppressed_rows(counts: &[u64], total_published: bool) -> Vec<bool> {
    if !total_published {
        return vec![true; counts.len()];
    }
    let mut hidden: Vec<bool> = counts.iter().map(|&c| c < K_MIN).collect();
    loop {
        let (number, sum) = counts
            .iter()
            .zip(&hidden)
            .filter(|(_, &h)| h)
            .fold((0usize, 0u64), |(n, s), (&c, _)| (n + 1, s + c));
        if number == 0 || (number >= 2 && sum >= K_MIN) {
            return hidden;
        }
        let smallest_shown = (0..counts.len())
            .filter(|&i| !hidden[i])
            .min_by_key(|&i| (counts[i], i));
        match smallest_shown {
            Some(i) => hidden[i] = true,
            // Everything is hidden: only the total, which is published, remains.
            None => return hidden,
        }
    }
}

/// Whether a table's total is published: its own row was published in the table above
/// (`None` at the top, a program period), and it counts at least `K_MIN`.
pub fn total_published(count: u64, published_above: Option<bool>) -> bool {
    published_above.unwrap_or(true) && count >= K_MIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cells_are_suppressed() {
        assert_eq!(
            suppressed_rows(&[40, 12, 30, 25, 10], true),
            [false, false, false, false, false]
        );
        // 3 and 2 are hidden, but together they would still count under ten: 12 goes too.
        assert_eq!(
            suppressed_rows(&[40, 12, 3, 25, 2], true),
            [false, true, true, false, true]
        );
    }

    #[test]
    fn one_small_cell_takes_the_smallest_other_with_it() {
        // 3 alone would be total − 40 − 12 − 25.
        assert_eq!(
            suppressed_rows(&[40, 12, 3, 25], true),
            [false, true, true, false]
        );
    }

    #[test]
    fn suppressed_cells_must_add_up_to_k() {
        // 2 + 3 = 5 is still a count under ten once subtracted from the total.
        assert_eq!(
            suppressed_rows(&[2, 3, 50, 11, 30], true),
            [true, true, false, true, false]
        );
    }

    #[test]
    fn nothing_small_means_nothing_hidden() {
        assert_eq!(suppressed_rows(&[10, 11], true), [false, false]);
        assert_eq!(suppressed_rows(&[], true), Vec::<bool>::new());
    }

    #[test]
    fn an_unpublished_total_hides_every_row() {
        assert_eq!(suppressed_rows(&[30, 40], false), [true, true]);
        assert!(!total_published(70, Some(false)));
        assert!(!total_published(9, None));
        assert!(total_published(10, None));
    }

    #[test]
    fn one_row_equal_to_the_total_is_hidden_when_small_and_shown_when_not() {
        assert_eq!(suppressed_rows(&[12], true), [false]);
        assert_eq!(suppressed_rows(&[4], true), [true]);
    }

    #[test]
    fn no_published_table_reveals_a_cell_under_k_by_subtraction() {
        // Exhaustive over small tables: whatever is hidden, the hidden rows together count
        // at least K_MIN (or there is nothing hidden), and no hidden row stands alone.
        let values = [1u64, 4, 9, 10, 15, 40];
        for a in values {
            for b in values {
                for c in values {
                    let counts = [a, b, c];
                    let hidden = suppressed_rows(&counts, true);
                    let (n, sum) = counts
                        .iter()
                        .zip(&hidden)
                        .filter(|(_, &h)| h)
                        .fold((0, 0), |(n, s), (&c, _)| (n + 1, s + c));
                    assert!(
                        n == 0 || (n >= 2 && sum >= K_MIN) || n == 3,
                        "{counts:?} {hidden:?}"
                    );
                    for (count, hide) in counts.iter().zip(&hidden) {
                        assert!(*hide || *count >= K_MIN, "{counts:?} {hidden:?}");
                    }
                }
            }
        }
    }
}
