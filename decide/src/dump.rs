//! The record dump: a simple binary file of instrument registrations and bus records, the input
//! of `ringbolt features export` and of replay until the Parquet archive reader lands.
//!
//! Layout (little-endian): the 8-byte magic `RBDUMP1\n`, then frames, each a tag byte:
//! - `1` instrument: `u32 id`, `u8 venue`, `u16 len`, `len` bytes of UTF-8 name;
//! - `2` record: the 128 bytes of a [`Record`] exactly as on the bus.
//!
//! A truncated final frame or an unknown tag ends the read with an error naming the offset.

use std::io::{self, BufRead, Write};

use ringbolt_bus::{RECORD_SIZE, Record, Venue};

use crate::synth::SynthItem;

/// File magic.
pub const MAGIC: &[u8; 8] = b"RBDUMP1\n";

/// Errors reading a dump.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// I/O failure.
    #[error("dump I/O: {0}")]
    Io(#[from] io::Error),
    /// Not a dump file.
    #[error("not a ringbolt record dump (bad magic)")]
    BadMagic,
    /// Corrupt frame.
    #[error("corrupt dump frame at byte {offset}: {what}")]
    Corrupt {
        /// Byte offset of the frame.
        offset: u64,
        /// What was wrong.
        what: String,
    },
}

/// Writes a dump.
#[derive(Debug)]
pub struct DumpWriter<W: Write> {
    out: W,
}

impl<W: Write> DumpWriter<W> {
    /// Writes the magic.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        Ok(Self { out })
    }

    /// Appends one item.
    ///
    /// # Errors
    /// I/O errors; names longer than 65535 bytes.
    pub fn write(&mut self, item: &SynthItem) -> io::Result<()> {
        match item {
            SynthItem::Instrument { id, venue, name } => {
                let len = u16::try_from(name.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
                self.out.write_all(&[1])?;
                self.out.write_all(&id.to_le_bytes())?;
                self.out.write_all(&[*venue as u8])?;
                self.out.write_all(&len.to_le_bytes())?;
                self.out.write_all(name.as_bytes())
            }
            SynthItem::Record(r) => {
                self.out.write_all(&[2])?;
                self.out.write_all(bytemuck::bytes_of(r))
            }
        }
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a dump as an iterator of items.
#[derive(Debug)]
pub struct DumpReader<R: BufRead> {
    input: R,
    offset: u64,
    failed: bool,
}

impl<R: BufRead> DumpReader<R> {
    /// Checks the magic.
    ///
    /// # Errors
    /// [`DumpError::BadMagic`] or I/O.
    pub fn new(mut input: R) -> Result<Self, DumpError> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| DumpError::BadMagic)?;
        if &magic != MAGIC {
            return Err(DumpError::BadMagic);
        }
        Ok(Self {
            input,
            offset: 8,
            failed: false,
        })
    }

    fn corrupt(
        &mut self,
        offset: u64,
        what: impl Into<String>,
    ) -> Option<Result<SynthItem, DumpError>> {
        self.failed = true;
        Some(Err(DumpError::Corrupt {
            offset,
            what: what.into(),
        }))
    }
}

impl<R: BufRead> Iterator for DumpReader<R> {
    type Item = Result<SynthItem, DumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let at = self.offset;
        let mut tag = [0u8; 1];
        match self.input.read(&mut tag) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => {
                self.failed = true;
                return Some(Err(e.into()));
            }
        }
        match tag[0] {
            1 => {
                let mut head = [0u8; 7];
                if self.input.read_exact(&mut head).is_err() {
                    return self.corrupt(at, "truncated instrument frame");
                }
                let id = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                let Some(venue) = Venue::from_u8(head[4]) else {
                    return self.corrupt(at, format!("unknown venue byte {}", head[4]));
                };
                let len = u16::from_le_bytes([head[5], head[6]]) as usize;
                let mut name = vec![0u8; len];
                if self.input.read_exact(&mut name).is_err() {
                    return self.corrupt(at, "truncated instrument name");
                }
                let Ok(name) = String::from_utf8(name) else {
                    return self.corrupt(at, "instrument name is not UTF-8");
                };
                self.offset += 8 + len as u64;
                Some(Ok(SynthItem::Instrument { id, venue, name }))
            }
            2 => {
                let mut rec = Record::zeroed();
                if self
                    .input
                    .read_exact(bytemuck::bytes_of_mut(&mut rec))
                    .is_err()
                {
                    return self.corrupt(at, "truncated record frame");
                }
                self.offset += 1 + RECORD_SIZE as u64;
                Some(Ok(SynthItem::Record(rec)))
            }
            t => self.corrupt(at, format!("unknown frame tag {t}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthConfig, SynthStream};

    #[test]
    fn dump_round_trips_and_reports_truncation() {
        let items: Vec<_> = SynthStream::new(SynthConfig {
            windows: 1,
            ..SynthConfig::default()
        })
        .take(5_000)
        .collect();
        let mut w = DumpWriter::new(Vec::new()).unwrap();
        for i in &items {
            w.write(i).unwrap();
        }
        let bytes = w.finish().unwrap();
        let back: Vec<_> = DumpReader::new(&bytes[..])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(back, items);
        let cut = &bytes[..bytes.len() - 3];
        let last = DumpReader::new(cut).unwrap().last().unwrap();
        assert!(matches!(last, Err(DumpError::Corrupt { .. })), "{last:?}");
        assert!(matches!(
            DumpReader::new(&b"nope"[..]),
            Err(DumpError::BadMagic)
        ));
    }
}
