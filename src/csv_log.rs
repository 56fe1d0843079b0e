//! A plain-text copy of a run's scalars, `scalars.csv` (`tag,step,value`), for people and
//! tools without TensorBoard; `deeprl plot` reads it.

use deeprl_agents::{AgentError, Logger};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends scalars to a CSV file (the header is written when the file is new).
pub struct CsvLogger {
    path: PathBuf,
    out: BufWriter<File>,
}

fn io_error(path: &Path, source: std::io::Error) -> AgentError {
    AgentError::Io { path: path.display().to_string(), source }
}

impl CsvLogger {
    /// Opens `path` for appending, creating it with a header if it does not exist.
    pub fn append(path: &Path) -> Result<Self, AgentError> {
        let new = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let mut out = BufWriter::new(file);
        if new {
            writeln!(out, "tag,step,value").map_err(|e| io_error(path, e))?;
        }
        Ok(CsvLogger { path: path.to_path_buf(), out })
    }
}

impl Logger for CsvLogger {
    fn scalar(&mut self, tag: &str, step: u64, value: f64) -> deeprl_agents::Result<()> {
        writeln!(self.out, "{tag},{step},{value}").map_err(|e| io_error(&self.path, e))
    }

    fn flush(&mut self) -> deeprl_agents::Result<()> {
        self.out.flush().map_err(|e| io_error(&self.path, e))
    }
}

/// The `(step, value)` pairs of `tag` in a `scalars.csv`, in file order.
pub fn read_scalars(path: &Path, tag: &str) -> Result<Vec<(u64, f64)>, AgentError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_error(path, e))?;
        if i == 0 {
            continue;
        }
        let mut parts = line.rsplitn(3, ',');
        let (Some(value), Some(step), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AgentError::Shape(format!(
                "{}: line {} is malformed",
                path.display(),
                i + 1
            )));
        };
        if t == tag {
            let bad = || {
                AgentError::Shape(format!("{}: line {} has a bad number", path.display(), i + 1))
            };
            out.push((step.parse().map_err(|_| bad())?, value.parse().map_err(|_| bad())?));
        }
    }
    Ok(out)
}
