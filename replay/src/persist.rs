//! Save and load of a buffer's contents (and priorities), so that a run resumes exactly.
//!
//! The file is little-endian binary: a magic tag and version, the shapes, the filled part of
//! every array, and an FNV-1a checksum of all that precedes it. It is written to a temporary
//! file beside the target, flushed to disk and renamed over the target, so a failed save
//! leaves the previous file intact. Loading checks the tag, the shapes against the file size
//! (before allocating) and the checksum, so a corrupt or truncated file is an error.

use crate::buffer::ReplayBuffer;
use crate::error::{ReplayError, Result};
use crate::experience::ActionKind;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"DEEPRLRB";
const VERSION: u32 = 1;

fn file_error(path: &Path, message: impl std::fmt::Display) -> ReplayError {
    ReplayError::File { path: path.display().to_string(), message: message.to_string() }
}

/// FNV-1a, 64 bits: a checksum that catches truncation and flipped bytes.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Writes values and checksums them.
pub(crate) struct Writer<W: Write> {
    out: W,
    sum: Fnv,
}

impl<W: Write> Writer<W> {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.sum.eat(b);
        self.out.write_all(b)
    }
    pub(crate) fn u64(&mut self, x: u64) -> std::io::Result<()> {
        self.bytes(&x.to_le_bytes())
    }
    pub(crate) fn f64(&mut self, x: f64) -> std::io::Result<()> {
        self.bytes(&x.to_le_bytes())
    }
    pub(crate) fn f32s(&mut self, xs: &[f32]) -> std::io::Result<()> {
        xs.iter().try_for_each(|x| self.bytes(&x.to_le_bytes()))
    }
    pub(crate) fn f64s(&mut self, xs: &[f64]) -> std::io::Result<()> {
        xs.iter().try_for_each(|x| self.bytes(&x.to_le_bytes()))
    }
    fn u32s(&mut self, xs: &[u32]) -> std::io::Result<()> {
        xs.iter().try_for_each(|x| self.bytes(&x.to_le_bytes()))
    }
}

/// Reads values and checksums them.
pub(crate) struct Reader<R: Read> {
    input: R,
    sum: Fnv,
}

impl<R: Read> Reader<R> {
    fn array<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.input.read_exact(&mut b)?;
        self.sum.eat(&b);
        Ok(b)
    }
    pub(crate) fn u64(&mut self) -> std::io::Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
    pub(crate) fn f64(&mut self) -> std::io::Result<f64> {
        self.array().map(f64::from_le_bytes)
    }
    pub(crate) fn f32s(&mut self, out: &mut [f32]) -> std::io::Result<()> {
        out.iter_mut().try_for_each(|x| self.array().map(|b| *x = f32::from_le_bytes(b)))
    }
    pub(crate) fn f64s(&mut self, out: &mut [f64]) -> std::io::Result<()> {
        out.iter_mut().try_for_each(|x| self.array().map(|b| *x = f64::from_le_bytes(b)))
    }
    fn u32s(&mut self, out: &mut [u32]) -> std::io::Result<()> {
        out.iter_mut().try_for_each(|x| self.array().map(|b| *x = u32::from_le_bytes(b)))
    }
}

/// What kind of buffer a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Uniform = 0,
    Prioritized = 1,
}

/// Writes `buffer` (and, through `extra`, what a wrapper adds) atomically to `path`.
pub(crate) fn save(
    path: &Path,
    kind: FileKind,
    buffer: &ReplayBuffer,
    extra: impl FnOnce(&mut Writer<BufWriter<File>>) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = Writer { out: BufWriter::new(file), sum: Fnv::new() };
        w.bytes(MAGIC)?;
        w.u64(VERSION as u64)?;
        w.u64(kind as u64)?;
        let (code, dim) = match buffer.action {
            ActionKind::Discrete => (0, 0),
            ActionKind::Continuous { dim } => (1, dim),
        };
        for x in [buffer.capacity, buffer.obs_len, code, dim, buffer.len, buffer.cursor] {
            w.u64(x as u64)?;
        }
        let n = buffer.len;
        w.f32s(&buffer.obs[..n * buffer.obs_len])?;
        w.f32s(&buffer.next_obs[..n * buffer.obs_len])?;
        w.u32s(&buffer.actions_discrete[..if dim == 0 { n } else { 0 }])?;
        w.f32s(&buffer.actions_continuous[..n * dim])?;
        w.f32s(&buffer.rewards[..n])?;
        w.f32s(&buffer.discounts[..n])?;
        extra(&mut w)?;
        let checksum = w.sum.0.to_le_bytes();
        w.out.write_all(&checksum)?;
        let file = w.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    };
    match write() {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| file_error(path, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(file_error(path, e))
        }
    }
}

/// Reads a buffer written by [`save`] (and, through `extra`, what a wrapper added).
pub(crate) fn load<T>(
    path: &Path,
    kind: FileKind,
    extra: impl FnOnce(&mut Reader<BufReader<File>>, &ReplayBuffer) -> std::io::Result<T>,
) -> Result<(ReplayBuffer, T)> {
    let bad = |message: String| file_error(path, message);
    let file = File::open(path).map_err(|e| file_error(path, e))?;
    let file_len = file.metadata().map_err(|e| file_error(path, e))?.len();
    let mut r = Reader { input: BufReader::new(file), sum: Fnv::new() };
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => file_error(path, "the file is truncated"),
        _ => file_error(path, e),
    };
    if &r.array::<8>().map_err(io)? != MAGIC {
        return Err(bad("not a deeprl replay buffer file (bad magic bytes)".into()));
    }
    let version = r.u64().map_err(io)?;
    if version != VERSION as u64 {
        return Err(bad(format!("file format version {version}, this build reads {VERSION}")));
    }
    let file_kind = r.u64().map_err(io)?;
    if file_kind != kind as u64 {
        return Err(bad(format!(
            "the file holds buffer kind {file_kind}, expected {}",
            kind as u64
        )));
    }
    let mut header = [0u64; 6];
    for h in &mut header {
        *h = r.u64().map_err(io)?;
    }
    let [capacity, obs_len, code, dim, len, cursor] = header;
    let action = match (code, dim) {
        (0, 0) => ActionKind::Discrete,
        (1, d) if d > 0 => ActionKind::Continuous { dim: d as usize },
        _ => return Err(bad(format!("invalid action kind {code} of dimension {dim}"))),
    };
    let consistent =
        len <= capacity && cursor < capacity.max(1) && (len == capacity || cursor == len);
    // Every array holds `len` rows: check the size before allocating anything.
    let row_bytes = obs_len
        .checked_mul(8)
        .and_then(|o| o.checked_add(if dim == 0 { 4 } else { 4 * dim }))
        .and_then(|b| b.checked_add(8));
    let body = row_bytes.and_then(|b| b.checked_mul(len));
    let fits =
        body.is_some_and(|b| b <= file_len) && capacity.checked_mul(obs_len.max(dim)).is_some();
    if !consistent || !fits || capacity > usize::MAX as u64 {
        return Err(bad(format!(
            "inconsistent header (capacity {capacity}, observation length {obs_len}, {len} experiences, cursor {cursor}) for a file of {file_len} bytes"
        )));
    }
    let mut buffer = ReplayBuffer::new(capacity as usize, obs_len as usize, action)?;
    let (n, o, d) = (len as usize, obs_len as usize, dim as usize);
    r.f32s(&mut buffer.obs[..n * o]).map_err(io)?;
    r.f32s(&mut buffer.next_obs[..n * o]).map_err(io)?;
    r.u32s(&mut buffer.actions_discrete[..if d == 0 { n } else { 0 }]).map_err(io)?;
    r.f32s(&mut buffer.actions_continuous[..n * d]).map_err(io)?;
    r.f32s(&mut buffer.rewards[..n]).map_err(io)?;
    r.f32s(&mut buffer.discounts[..n]).map_err(io)?;
    buffer.len = n;
    buffer.cursor = cursor as usize;
    let more = extra(&mut r, &buffer).map_err(io)?;
    let expected = r.sum.0;
    let mut stored = [0u8; 8];
    r.input.read_exact(&mut stored).map_err(io)?;
    if u64::from_le_bytes(stored) != expected {
        return Err(bad("checksum mismatch: the file is corrupt".into()));
    }
    if r.input.read(&mut [0u8; 1]).map_err(io)? != 0 {
        return Err(bad("trailing bytes after the checksum".into()));
    }
    Ok((buffer, more))
}

impl ReplayBuffer {
    /// Writes the buffer to `path` atomically (temporary file, then rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save(path.as_ref(), FileKind::Uniform, self, |_| Ok(()))
    }

    /// Reads a buffer written by [`ReplayBuffer::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        load(path.as_ref(), FileKind::Uniform, |_, _| Ok(())).map(|(b, ())| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experience::{Action, Experience};

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("deeprl-replay-{}-{name}", std::process::id()))
    }

    fn filled(capacity: usize, pushes: usize, action: ActionKind) -> ReplayBuffer {
        let mut buf = ReplayBuffer::new(capacity, 3, action).unwrap();
        for k in 0..pushes {
            let x = k as f32 * 0.1;
            let values = [x, -x];
            let action = match action {
                ActionKind::Discrete => Action::Discrete(k % 4),
                ActionKind::Continuous { dim } => Action::Continuous(&values[..dim]),
            };
            let e = Experience {
                obs: &[x, x, x],
                action,
                reward: x.sin(),
                next_obs: &[x, 1.0, -x],
                discount: 0.99,
            };
            buf.push(&e).unwrap();
        }
        buf
    }

    #[test]
    fn round_trip_is_bit_for_bit_and_resumes_the_ring() {
        for (capacity, pushes, action) in [
            (5, 3, ActionKind::Discrete),
            (5, 12, ActionKind::Discrete),
            (4, 9, ActionKind::Continuous { dim: 2 }),
        ] {
            let buf = filled(capacity, pushes, action);
            let path = temp(&format!("rt-{capacity}-{pushes}"));
            buf.save(&path).unwrap();
            let back = ReplayBuffer::load(&path).unwrap();
            assert_eq!(back, buf);
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors() {
        let buf = filled(8, 6, ActionKind::Discrete);
        let path = temp("corrupt");
        buf.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut flipped = bytes.clone();
        flipped[100] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(ReplayBuffer::load(&path).unwrap_err().to_string().contains("checksum"));
        std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
        assert!(ReplayBuffer::load(&path).unwrap_err().to_string().contains("truncated"));
        let mut huge = bytes.clone();
        huge[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // obs_len
        std::fs::write(&path, &huge).unwrap();
        assert!(ReplayBuffer::load(&path).unwrap_err().to_string().contains("inconsistent header"));
        std::fs::write(&path, b"hello").unwrap();
        assert!(ReplayBuffer::load(&path).is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(ReplayBuffer::load(&path).unwrap_err().to_string().contains("deeprl-replay"));
    }

    #[test]
    fn a_failed_save_leaves_the_previous_file() {
        let path = temp("keep");
        filled(4, 2, ActionKind::Discrete).save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A directory where the temporary file must go makes the write fail.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::create_dir(&tmp).unwrap();
        assert!(filled(4, 3, ActionKind::Discrete).save(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(ReplayBuffer::load(&path).unwrap(), filled(4, 2, ActionKind::Discrete));
        std::fs::remove_dir(&tmp).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
