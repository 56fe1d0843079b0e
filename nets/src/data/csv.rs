//! A loader for numeric CSV tables: comma-separated numbers, one row per line, an optional
//! header line, and optionally the last column as an integer class label.
//!
//! Deliberately small: no quoting, no missing values. An empty table, a row with another
//! number of fields than the first, or a field that is not a number is an error naming the
//! (1-based) line.

use super::{DataError, Dataset};

/// How to read a CSV table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// Skip the first non-empty line (column names).
    pub header: bool,
    /// Read the last column as a class label (a non-negative integer).
    pub label_last: bool,
}

/// Parses CSV `text` (named `what` in errors, e.g. the file name) into a [`Dataset`].
/// Blank lines are skipped; fields are trimmed.
pub fn parse_csv(text: &str, what: &str, options: CsvOptions) -> Result<Dataset, DataError> {
    let err =
        |line: usize, message: String| DataError::Csv { what: what.to_string(), line, message };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut width: Option<usize> = None;
    let mut header_pending = options.header;
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if header_pending {
            header_pending = false;
            continue;
        }
        let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
        match width {
            None => {
                if options.label_last && fields.len() < 2 {
                    return Err(err(
                        line,
                        "a labelled row needs at least one feature and the label".into(),
                    ));
                }
                width = Some(fields.len());
            }
            Some(w) if w != fields.len() => {
                return Err(err(
                    line,
                    format!("{} fields, expected {w} as on the first row", fields.len()),
                ));
            }
            _ => {}
        }
        let n_features = if options.label_last { fields.len() - 1 } else { fields.len() };
        for (col, f) in fields[..n_features].iter().enumerate() {
            let v: f32 = f
                .parse()
                .map_err(|_| err(line, format!("field {} = {f:?} is not a number", col + 1)))?;
            if !v.is_finite() {
                return Err(err(line, format!("field {} = {f:?} is not finite", col + 1)));
            }
            features.push(v);
        }
        if options.label_last {
            let f = fields[n_features];
            let l: u32 = f.parse().map_err(|_| {
                err(
                    line,
                    format!("label field {} = {f:?} is not a non-negative integer", n_features + 1),
                )
            })?;
            labels.push(l);
        }
    }
    let Some(width) = width else {
        // Name the line where the first data row was expected.
        return Err(err(text.lines().count() + 1, "the table is empty: no data rows".into()));
    };
    let dim = if options.label_last { width - 1 } else { width };
    Dataset::new(features, dim, options.label_last.then_some(labels))
}

/// Reads and parses a CSV file (see [`parse_csv`]); a `.gz` name is decompressed first.
pub fn load_csv(
    path: impl AsRef<std::path::Path>,
    options: CsvOptions,
) -> Result<Dataset, DataError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_csv(&text, &path.display().to_string(), options)
}

/// A text file, gunzipped when its name ends in `.gz`.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String, DataError> {
    use std::io::Read;
    let io = |source| DataError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text).map_err(io)?;
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text).map_err(io)?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_header_and_labels() {
        let o = CsvOptions { header: true, label_last: true };
        let d = parse_csv("a,b,y\n1, 2.5, 3\n\n-1,0,0\n", "t", o).unwrap();
        assert_eq!((d.len(), d.dim()), (2, 2));
        assert_eq!(d.features(), [1.0, 2.5, -1.0, 0.0]);
        assert_eq!(d.labels().unwrap(), [3, 0]);
    }

    #[test]
    fn empty_ragged_and_non_numeric_name_the_line() {
        let o = CsvOptions::default();
        let e = parse_csv("", "t.csv", o).unwrap_err().to_string();
        assert_eq!(e, "CSV t.csv: line 1: the table is empty: no data rows");
        let e =
            parse_csv("h\n", "t.csv", CsvOptions { header: true, ..o }).unwrap_err().to_string();
        assert!(e.contains("line 2: the table is empty"), "{e}");
        let e = parse_csv("1,2\n3,4\n5\n", "t.csv", o).unwrap_err().to_string();
        assert_eq!(e, "CSV t.csv: line 3: 1 fields, expected 2 as on the first row");
        let e = parse_csv("1,2\n3,x\n", "t.csv", o).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("\"x\""), "{e}");
        let e = parse_csv("1,2\n3,-1\n", "t", CsvOptions { label_last: true, ..o })
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("label"), "{e}");
    }
}
