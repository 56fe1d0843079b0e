//! A TensorBoard event-file writer: scalars and text, in the format TensorBoard reads.
//!
//! An event file is a sequence of TFRecords (`u64` length, masked CRC-32C of the length, the
//! bytes, masked CRC-32C of the bytes), each holding one `tensorflow.Event` protobuf: first
//! `{wall_time, file_version: "brain.Event:2"}`, then `{wall_time, step, summary}` per value.
//! The few protobuf fields needed are encoded here by hand (see `event.proto`, `summary.proto`
//! and `tensor.proto` in TensorFlow): a generic protobuf crate would bring a build step for
//! five fields. The maintained Rust writers we looked at either panic on I/O errors inside a
//! writer thread (tensorboard-rs, no release since 2022) or write scalars only.

use deeprl_agents::{AgentError, Logger};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one event file in a directory.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

fn io_error(path: &Path, source: std::io::Error) -> AgentError {
    AgentError::Io { path: path.display().to_string(), source }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Event{wall_time = 1, step = 2, <payload>}`; the payload is already an encoded field.
fn event(step: u64, payload: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(payload.len() + 20);
    e.push(1 << 3 | 1);
    e.extend_from_slice(&now().to_le_bytes());
    if step > 0 {
        varint(&mut e, 2 << 3);
        varint(&mut e, step);
    }
    e.extend_from_slice(payload);
    e
}

/// `summary = 5` holding one `Summary.Value` (`value = 1`).
fn summary_field(value: &[u8]) -> Vec<u8> {
    let mut summary = Vec::with_capacity(value.len() + 4);
    bytes_field(&mut summary, 1, value);
    let mut field = Vec::with_capacity(summary.len() + 4);
    bytes_field(&mut field, 5, &summary);
    field
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<time>.deeprl.<pid>` (and `dir` if needed) and writes
    /// the file-version event.
    pub fn create(dir: &Path) -> Result<Self, AgentError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let stamp = now();
        let name = format!(
            "events.out.tfevents.{}.deeprl.{}.{}",
            stamp as u64,
            std::process::id(),
            (stamp.fract() * 1e6) as u64
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| io_error(&path, e))?;
        let mut writer = EventWriter { path, out: BufWriter::new(file) };
        let mut version = Vec::new();
        bytes_field(&mut version, 3, b"brain.Event:2");
        writer.record(&event(0, &version))?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> Result<(), AgentError> {
        let len = (data.len() as u64).to_le_bytes();
        let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
            out.write_all(&len)?;
            out.write_all(&masked_crc(&len).to_le_bytes())?;
            out.write_all(data)?;
            out.write_all(&masked_crc(data).to_le_bytes())
        };
        write(&mut self.out).map_err(|e| io_error(&self.path, e))
    }

    /// Writes a scalar (`Summary.Value{tag = 1, simple_value = 2}`).
    pub fn add_scalar(&mut self, tag: &str, step: u64, value: f32) -> Result<(), AgentError> {
        let mut v = Vec::with_capacity(tag.len() + 8);
        bytes_field(&mut v, 1, tag.as_bytes());
        v.push(2 << 3 | 5);
        v.extend_from_slice(&value.to_le_bytes());
        self.record(&event(step, &summary_field(&v)))
    }

    /// Writes a text for TensorBoard's text plugin: a `Summary.Value` with `metadata = 9`
    /// (`plugin_data.plugin_name = "text"`) and `tensor = 8` (a `DT_STRING` scalar).
    pub fn add_text(&mut self, tag: &str, step: u64, text: &str) -> Result<(), AgentError> {
        let mut plugin = Vec::new();
        bytes_field(&mut plugin, 1, b"text");
        let mut metadata = Vec::new();
        bytes_field(&mut metadata, 1, &plugin);
        let mut tensor = vec![1 << 3, 7]; // dtype = DT_STRING
        bytes_field(&mut tensor, 2, &[]); // tensor_shape: a scalar
        bytes_field(&mut tensor, 8, text.as_bytes()); // string_val
        let mut v = Vec::new();
        bytes_field(&mut v, 1, tag.as_bytes());
        bytes_field(&mut v, 9, &metadata);
        bytes_field(&mut v, 8, &tensor);
        self.record(&event(step, &summary_field(&v)))
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> Result<(), AgentError> {
        self.out.flush().map_err(|e| io_error(&self.path, e))
    }
}

impl Logger for EventWriter {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> deeprl_agents::Result<()> {
        self.add_scalar(tag, step, value as f32)
    }

    fn text(&mut self, tag: &str, step: u64, text: &str) -> deeprl_agents::Result<()> {
        self.add_text(tag, step, text)
    }

    fn flush(&mut self) -> deeprl_agents::Result<()> {
        EventWriter::flush(self)
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Reading event files back: records with their CRCs checked, and the scalars in them. For
/// tests and for `deeprl plot` on runs without a CSV.
pub mod read {
    use super::masked_crc;

    /// A scalar found in an event file.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Scalar {
        pub tag: String,
        pub step: u64,
        pub value: f32,
    }

    fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*pos)?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A field of a protobuf message: number, wire type, and its value (varints and fixed
    /// numbers) or its bytes (length-delimited).
    type Field<'a> = (u64, u64, u64, &'a [u8]);

    /// What an event file holds: its scalars and its `(tag, text)` pairs.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Contents {
        pub scalars: Vec<Scalar>,
        pub texts: Vec<(String, String)>,
    }

    /// The fields of one protobuf message.
    fn fields(msg: &[u8]) -> Option<Vec<Field<'_>>> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < msg.len() {
            let key = varint(msg, &mut pos)?;
            let (field, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((field, wire, varint(msg, &mut pos)?, &msg[0..0])),
                1 => {
                    let b = msg.get(pos..pos + 8)?;
                    pos += 8;
                    out.push((field, wire, u64::from_le_bytes(b.try_into().ok()?), b));
                }
                2 => {
                    let len = varint(msg, &mut pos)? as usize;
                    let b = msg.get(pos..pos + len)?;
                    pos += len;
                    out.push((field, wire, 0, b));
                }
                5 => {
                    let b = msg.get(pos..pos + 4)?;
                    pos += 4;
                    out.push((field, wire, u64::from(u32::from_le_bytes(b.try_into().ok()?)), b));
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// The records of an event file, or an error naming the first bad one.
    pub fn records(file: &[u8]) -> Result<Vec<&[u8]>, String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < file.len() {
            let head = file.get(pos..pos + 12).ok_or(format!("truncated header at {pos}"))?;
            let len_bytes = &head[..8];
            let crc = u32::from_le_bytes(head[8..12].try_into().map_err(|_| "header")?);
            if crc != masked_crc(len_bytes) {
                return Err(format!("bad length CRC at {pos}"));
            }
            let len = u64::from_le_bytes(len_bytes.try_into().map_err(|_| "length")?) as usize;
            let data =
                file.get(pos + 12..pos + 12 + len).ok_or(format!("truncated record at {pos}"))?;
            let crc_bytes = file.get(pos + 12 + len..pos + 16 + len).ok_or("truncated CRC")?;
            if u32::from_le_bytes(crc_bytes.try_into().map_err(|_| "crc")?) != masked_crc(data) {
                return Err(format!("bad data CRC at {pos}"));
            }
            out.push(data);
            pos += 16 + len;
        }
        Ok(out)
    }

    /// The scalars (simple values) and the texts of an event file.
    pub fn scalars_and_texts(file: &[u8]) -> Result<Contents, String> {
        let (mut scalars, mut texts) = (Vec::new(), Vec::new());
        for record in records(file)? {
            let event = fields(record).ok_or("bad event")?;
            let step = event.iter().find(|f| f.0 == 2).map_or(0, |f| f.2);
            for summary in event.iter().filter(|f| f.0 == 5) {
                for value in fields(summary.3).ok_or("bad summary")? {
                    let v = fields(value.3).ok_or("bad value")?;
                    let tag = v
                        .iter()
                        .find(|f| f.0 == 1)
                        .map(|f| String::from_utf8_lossy(f.3).into_owned())
                        .unwrap_or_default();
                    if let Some(simple) = v.iter().find(|f| f.0 == 2 && f.1 == 5) {
                        scalars.push(Scalar { tag, step, value: f32::from_bits(simple.2 as u32) });
                    } else if let Some(tensor) = v.iter().find(|f| f.0 == 8) {
                        let t = fields(tensor.3).ok_or("bad tensor")?;
                        if let Some(s) = t.iter().find(|f| f.0 == 8) {
                            texts.push((tag, String::from_utf8_lossy(s.3).into_owned()));
                        }
                    }
                }
            }
        }
        Ok(Contents { scalars, texts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_value_and_round_trip() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720 check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let dir = std::env::temp_dir().join(format!("deeprl-tb-{}", std::process::id()));
        let mut w = EventWriter::create(&dir).unwrap();
        w.add_scalar("rollout/episode_return", 10, 1.5).unwrap();
        w.add_scalar("train/loss", 300, -0.25).unwrap();
        w.add_text("config", 0, "lr = 0.1").unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let read::Contents { scalars, texts } = read::scalars_and_texts(&bytes).unwrap();
        assert_eq!(
            scalars,
            vec![
                read::Scalar { tag: "rollout/episode_return".into(), step: 10, value: 1.5 },
                read::Scalar { tag: "train/loss".into(), step: 300, value: -0.25 },
            ]
        );
        assert_eq!(texts, vec![("config".to_string(), "lr = 0.1".to_string())]);
        let mut corrupt = bytes.clone();
        let n = corrupt.len();
        corrupt[n - 6] ^= 1;
        assert!(read::records(&corrupt).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
