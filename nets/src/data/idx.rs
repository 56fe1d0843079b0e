//! The IDX format of MNIST (LeCun, Cortes and Burges, <http://yann.lecun.com/exdb/mnist/>):
//! a big-endian header `[0, 0, type, ndim]`, then `ndim` dimension sizes as `u32`, then the
//! values in row-major order. Type `0x08` is `u8`, `0x0D` is `f32`. Image files have three
//! dimensions `[n, rows, cols]`, label files one `[n]`.
//!
//! A file shorter or longer than its header says is an error, as is a magic number of
//! another type.

use std::path::Path;

use super::{DataError, Dataset};

/// The values of one IDX file and its dimension sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
    /// Whether the file stored `u8` values (type `0x08`), as image files usually do.
    pub is_u8: bool,
}

/// Parses an IDX file's bytes (named `what` in errors).
pub fn parse_idx(bytes: &[u8], what: &str) -> Result<IdxArray, DataError> {
    let err = |message: String| DataError::Idx { what: what.to_string(), message };
    if bytes.len() < 4 {
        return Err(err(format!("truncated: {} bytes, the header alone needs 4", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!("bad magic {:02x}{:02x}: expected 0000", bytes[0], bytes[1])));
    }
    let (ty, ndim) = (bytes[2], bytes[3] as usize);
    let width = match ty {
        0x08 => 1,
        0x0D => 4,
        other => {
            return Err(err(format!("value type 0x{other:02x} not supported (0x08 u8, 0x0d f32)")))
        }
    };
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(err(format!(
            "truncated: {} bytes, the header of {ndim} dimensions needs {header}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|k| {
            u32::from_be_bytes([
                bytes[4 + 4 * k],
                bytes[5 + 4 * k],
                bytes[6 + 4 * k],
                bytes[7 + 4 * k],
            ]) as usize
        })
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let expected = count.and_then(|c| c.checked_mul(width)).and_then(|b| b.checked_add(header));
    match expected {
        Some(e) if e == bytes.len() => {}
        Some(e) if e > bytes.len() => {
            return Err(err(format!(
                "truncated: {} bytes, dimensions {dims:?} need {e}",
                bytes.len()
            )))
        }
        Some(e) => {
            return Err(err(format!("{} bytes, dimensions {dims:?} need exactly {e}", bytes.len())))
        }
        None => return Err(err(format!("dimensions {dims:?} overflow"))),
    }
    let body = &bytes[header..];
    let values = if width == 1 {
        body.iter().map(|&b| b as f32).collect()
    } else {
        body.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    Ok(IdxArray { dims, values, is_u8: width == 1 })
}

/// The bytes of a `u8` IDX file with these dimensions (for writing test files and
/// converting data). Errors when `values` does not fill the dimensions.
pub fn encode_idx_u8(dims: &[usize], values: &[u8]) -> Result<Vec<u8>, DataError> {
    let n: usize = dims.iter().product();
    if n != values.len() || dims.len() > 255 || dims.iter().any(|&d| d > u32::MAX as usize) {
        return Err(DataError::Invalid(format!(
            "{} values do not fill IDX dimensions {dims:?}",
            values.len()
        )));
    }
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    use std::io::Read;
    let io = |source| DataError::Io { path: path.display().to_string(), source };
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(io)?;
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).map_err(io)?;
    } else {
        std::io::BufReader::new(file).read_to_end(&mut bytes).map_err(io)?;
    }
    Ok(bytes)
}

/// Reads an IDX file (gunzipped when the name ends in `.gz`).
pub fn load_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    parse_idx(&read(path)?, &path.display().to_string())
}

/// An MNIST-style pair: images `[n, rows, cols]` (scaled by `1 / 255` to `[0, 1]` for `u8`
/// files) and labels `[n]`, as an image [`Dataset`]. The counts must agree.
pub fn load_idx_images(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<Dataset, DataError> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    let img = load_idx(ip)?;
    let lab = load_idx(lp)?;
    let what = |p: &Path| p.display().to_string();
    if img.dims.len() != 3 {
        return Err(DataError::Idx {
            what: what(ip),
            message: format!("images need 3 dimensions, got {:?}", img.dims),
        });
    }
    if lab.dims.len() != 1 || lab.dims[0] != img.dims[0] {
        return Err(DataError::Idx {
            what: what(lp),
            message: format!("labels of dimensions {:?} for {} images", lab.dims, img.dims[0]),
        });
    }
    let labels = lab
        .values
        .iter()
        .map(|&v| if v >= 0.0 && v.fract() == 0.0 { Ok(v as u32) } else { Err(v) })
        .collect::<Result<Vec<u32>, f32>>()
        .map_err(|v| DataError::Idx {
            what: what(lp),
            message: format!("label {v} is not a class index"),
        })?;
    let (rows, cols) = (img.dims[1], img.dims[2]);
    let is_u8 = img.is_u8;
    let data = Dataset::new(img.values, rows * cols, Some(labels))?;
    let data = if is_u8 { data.scaled(1.0 / 255.0) } else { data };
    data.with_image_shape(rows, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let bytes = encode_idx_u8(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 250, 7, 8, 9, 10, 255]).unwrap();
        let a = parse_idx(&bytes, "x").unwrap();
        assert_eq!(a.dims, [2, 2, 3]);
        assert_eq!(a.values[6], 250.0);
        let e = parse_idx(&bytes[..bytes.len() - 1], "x").unwrap_err().to_string();
        assert!(e.contains("truncated: 27 bytes") && e.contains("need 28"), "{e}");
        assert!(parse_idx(&bytes[..6], "x").unwrap_err().to_string().contains("truncated"));
        let mut bad = bytes.clone();
        bad[2] = 0x0B;
        assert!(parse_idx(&bad, "x").unwrap_err().to_string().contains("0x0b"));
    }
}
