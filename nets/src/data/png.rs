//! A minimal grayscale PNG writer (W3C PNG specification, 2003): signature, `IHDR` (8-bit
//! grayscale), one zlib-compressed `IDAT` with filter type 0 on every row, `IEND`; each chunk
//! closed by its CRC-32. Used by the examples to save grids of digits.

use std::io::Write;
use std::path::Path;

use super::DataError;

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// The PNG bytes of a `width x height` 8-bit grayscale image given row-major.
pub fn encode_gray_png(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>, DataError> {
    if width == 0 || height == 0 || pixels.len() != width * height || width > u32::MAX as usize {
        return Err(DataError::Invalid(format!(
            "{} pixels for a {width}x{height} PNG",
            pixels.len()
        )));
    }
    let mut raw = Vec::with_capacity((width + 1) * height);
    for row in pixels.chunks_exact(width) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let io = |source| DataError::Io { path: "<png encoder>".into(), source };
    z.write_all(&raw).map_err(io)?;
    let idat = z.finish().map_err(io)?;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // bit depth 8, grayscale, deflate, filter 0, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Tiles `images` (each `side x side`, values in `[0, 1]`, clamped) into a grid of `cols`
/// columns, each image scaled up `zoom` times with a 1-pixel border, and writes it as PNG
/// to `path`, creating parent directories.
pub fn save_grid_png(
    path: impl AsRef<Path>,
    images: &[Vec<f32>],
    side: usize,
    cols: usize,
    zoom: usize,
) -> Result<(), DataError> {
    if images.is_empty() || cols == 0 || zoom == 0 || images.iter().any(|i| i.len() != side * side)
    {
        return Err(DataError::Invalid(format!(
            "a PNG grid needs non-empty {side}x{side} images, cols and zoom >= 1"
        )));
    }
    let rows = images.len().div_ceil(cols);
    let cell = side * zoom + 1;
    let (w, h) = (cols * cell + 1, rows * cell + 1);
    let mut px = vec![64u8; w * h];
    for (k, img) in images.iter().enumerate() {
        let (gy, gx) = (k / cols * cell + 1, k % cols * cell + 1);
        for y in 0..side * zoom {
            for x in 0..side * zoom {
                let v = img[(y / zoom) * side + x / zoom].clamp(0.0, 1.0);
                px[(gy + y) * w + gx + x] = (v * 255.0).round() as u8;
            }
        }
    }
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| DataError::Io { path: dir.display().to_string(), source })?;
    }
    std::fs::write(path, encode_gray_png(w, h, &px)?)
        .map_err(|source| DataError::Io { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_chunks_and_valid_zlib() {
        let px: Vec<u8> = (0..12).collect();
        let png = encode_gray_png(4, 3, &px).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        // IEND's CRC is the well-known constant AE 42 60 82.
        assert_eq!(&png[png.len() - 4..], [0xAE, 0x42, 0x60, 0x82]);
        let idat_len = u32::from_be_bytes([png[33], png[34], png[35], png[36]]) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        use std::io::Read;
        flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]).read_to_end(&mut raw).unwrap();
        assert_eq!(raw, [0, 0, 1, 2, 3, 0, 4, 5, 6, 7, 0, 8, 9, 10, 11]);
        assert!(encode_gray_png(4, 3, &px[..5]).is_err());
    }
}
