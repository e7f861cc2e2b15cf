//! Tables as `kubectl get` prints them: upper-case headers, left-aligned columns three spaces
//! apart, no trailing blanks.

/// Renders a header line and one line per row; every line ends with a newline. Rows shorter than
/// the header get empty cells; longer ones are cut to the header's width.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for line in std::iter::once(&header).chain(rows) {
        let mut text = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = line.get(i).map_or("", String::as_str);
            if i > 0 {
                text.push_str("   ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn columns_are_aligned_three_spaces_apart_without_trailing_blanks() {
        let table = render(
            &["NAME", "READY", "EXPIRES"],
            &[
                row(&["okta-scim", "True", "in 5d3h"]),
                row(&["a", "False", ""]),
            ],
        );
        assert_eq!(
            table,
            "NAME        READY   EXPIRES\n\
             okta-scim   True    in 5d3h\n\
             a           False\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header() {
        assert_eq!(render(&["TIME", "AGO"], &[]), "TIME   AGO\n");
    }

    #[test]
    fn short_rows_get_empty_cells_and_long_rows_are_cut() {
        let table = render(&["A", "B"], &[row(&["x"]), row(&["y", "z", "dropped"])]);
        assert_eq!(table, "A   B\nx\ny   z\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let table = render(&["N", "M"], &[row(&["é", "x"])]);
        assert_eq!(table, "N   M\né   x\n");
    }
}
