//! TFRecord framing: length, masked CRC-32C checksums, and the reader.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use prost::Message;

use crate::error::{Error, RecordPart};
use crate::proto::Event;

/// CRC-32C (Castagnoli, the iSCSI polynomial), as TensorFlow uses.
static CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The constant TensorFlow adds when it masks a CRC.
const MASK_DELTA: u32 = 0xa282_ead8;

/// Bytes before a record's data: the u64 length and its masked CRC.
pub(crate) const HEADER_LEN: usize = 12;

/// Bytes after a record's data: its masked CRC.
pub(crate) const FOOTER_LEN: usize = 4;

/// CRC-32C (Castagnoli) of `data`, unmasked.
///
/// ```
/// // The standard check value of CRC-32C.
/// assert_eq!(htsr_tensorboard::crc32c(b"123456789"), 0xe306_9283);
/// ```
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// Masked CRC-32C of `data`, as stored in TFRecord files:
/// `((crc >> 15) | (crc << 17)).wrapping_add(0xa282ead8)`.
///
/// ```
/// // TensorBoard's test vector: the record holding
/// // Event { file_version: "CRC test, one two" }.
/// assert_eq!(
///     htsr_tensorboard::masked_crc32c(b"\x1a\x11CRC test, one two"),
///     0x5794_d08a
/// );
/// ```
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Appends one framed record holding `data` to `out`.
pub(crate) fn frame_record(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.reserve(HEADER_LEN + data.len() + FOOTER_LEN);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Reads into `buf` until it is full or the reader ends; returns the number
/// of bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads every record of an event file, checks both CRCs of each, and
/// decodes each as an [`Event`].
///
/// Any defect is an error that names the file and the byte offset of the
/// record: a record cut short ([`Error::Truncated`]), a checksum mismatch
/// ([`Error::Checksum`]), or data that is not an `Event`
/// ([`Error::Decode`]). A file of zero bytes holds no records and gives an
/// empty vector. The whole file is read, so a file that another process is
/// still writing may end in a partial record and give
/// [`Error::Truncated`].
///
/// Fields that this crate's messages do not declare are dropped (see
/// [`proto`](crate::proto)).
///
/// ```
/// # fn main() -> Result<(), htsr_tensorboard::Error> {
/// use htsr_tensorboard::{read_events, EventWriter};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut writer = EventWriter::create(dir.path())?;
/// writer.add_scalar("loss", 0.25, 7, 1.0e9)?;
/// writer.flush()?;
///
/// let events = read_events(writer.path())?;
/// assert_eq!(events.len(), 2); // file_version, then the scalar
/// assert_eq!(events[1].step, 7);
/// # Ok(())
/// # }
/// ```
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>, Error> {
    match read_events_until_defect(path)? {
        (events, None) => Ok(events),
        (_, Some(defect)) => Err(defect),
    }
}

/// Reads the records of an event file up to its first defect: the events before it, and the defect
/// ([`Error::Truncated`], [`Error::Checksum`] or [`Error::Decode`]) if there is one.
///
/// For a file that a writer may have been cut off in (a process killed mid-write leaves a partial record at
/// the end): TensorBoard itself stops at such a record and shows everything before it, so a caller that wants
/// to know what TensorBoard shows wants the events before the defect too. Only I/O errors (open, stat, read)
/// are returned as `Err`.
///
/// ```
/// # fn main() -> Result<(), htsr_tensorboard::Error> {
/// use htsr_tensorboard::{read_events_until_defect, EventWriter};
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut writer = EventWriter::create(dir.path())?;
/// writer.add_scalar("loss", 0.25, 7, 1.0e9)?;
/// writer.close()?;
/// let path = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
/// let len = std::fs::metadata(&path).unwrap().len();
/// std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
///
/// let (events, defect) = read_events_until_defect(&path)?;
/// assert_eq!(events.len(), 1); // the file-version record survives
/// assert!(matches!(defect, Some(htsr_tensorboard::Error::Truncated { .. })));
/// # Ok(())
/// # }
/// ```
pub fn read_events_until_defect(
    path: impl AsRef<Path>,
) -> Result<(Vec<Event>, Option<Error>), Error> {
    let mut events = Vec::new();
    match read_records(path.as_ref(), &mut events) {
        Ok(()) => Ok((events, None)),
        Err(e @ Error::Io { .. }) => Err(e),
        Err(defect) => Ok((events, Some(defect))),
    }
}

/// Decodes every record of `path` into `events`, stopping at the first error.
fn read_records(path: &Path, events: &mut Vec<Event>) -> Result<(), Error> {
    let io_err = |op: &'static str| {
        move |source: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    };
    let file = File::open(path).map_err(io_err("open"))?;
    let file_len = file.metadata().map_err(io_err("stat"))?.len();
    let mut reader = BufReader::new(file);

    let mut offset: u64 = 0;
    let mut data = Vec::new();
    loop {
        let truncated = |part: RecordPart| Error::Truncated {
            path: path.to_path_buf(),
            offset,
            part,
        };
        let checksum = |part: RecordPart, stored: u32, computed: u32| Error::Checksum {
            path: path.to_path_buf(),
            offset,
            part,
            stored,
            computed,
        };

        let mut header = [0u8; HEADER_LEN];
        let got = read_up_to(&mut reader, &mut header).map_err(io_err("read"))?;
        if got == 0 {
            break;
        }
        if got < 8 {
            return Err(truncated(RecordPart::Length));
        }
        if got < HEADER_LEN {
            return Err(truncated(RecordPart::LengthCrc));
        }
        let len_bytes: [u8; 8] = header[..8].try_into().expect("8 bytes");
        let stored = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        let computed = masked_crc32c(&len_bytes);
        if stored != computed {
            return Err(checksum(RecordPart::LengthCrc, stored, computed));
        }
        let len = u64::from_le_bytes(len_bytes);

        // The length's CRC matched, but never allocate past the file's end.
        let remaining = file_len.saturating_sub(offset + HEADER_LEN as u64);
        if len > remaining {
            return Err(truncated(RecordPart::Data));
        }
        let len = usize::try_from(len).map_err(|_| truncated(RecordPart::Data))?;
        data.resize(len, 0);
        if read_up_to(&mut reader, &mut data).map_err(io_err("read"))? < len {
            return Err(truncated(RecordPart::Data));
        }

        let mut footer = [0u8; FOOTER_LEN];
        if read_up_to(&mut reader, &mut footer).map_err(io_err("read"))? < FOOTER_LEN {
            return Err(truncated(RecordPart::DataCrc));
        }
        let stored = u32::from_le_bytes(footer);
        let computed = masked_crc32c(&data);
        if stored != computed {
            return Err(checksum(RecordPart::DataCrc, stored, computed));
        }

        let event = Event::decode(data.as_slice()).map_err(|source| Error::Decode {
            path: path.to_path_buf(),
            offset,
            source,
        })?;
        events.push(event);
        offset += (HEADER_LEN + len + FOOTER_LEN) as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_rfc3720_vectors() {
        // RFC 3720 (iSCSI), appendix B.4.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113f_db5c);
    }

    #[test]
    fn masked_crc_matches_tensorboard_vector() {
        // From TensorBoard's Rust data server (tensorboard/data/server,
        // masked_crc.rs), "extracted from real TensorFlow event file";
        // TensorBoard's Python `masked_crc32c` (2.21.0,
        // compat/tensorflow_stub/pywrap_tensorflow.py) gives the same value.
        assert_eq!(masked_crc32c(b"\x1a\x11CRC test, one two"), 0x5794_d08a);
        // Unmasked value and the mask of zero, for a failing-test diagnosis.
        assert_eq!(crc32c(b"\x1a\x11CRC test, one two"), 0xf2d9_5a88);
        assert_eq!(masked_crc32c(b""), MASK_DELTA);
    }

    #[test]
    fn vector_is_an_encoded_event() {
        // The vector's bytes are exactly Event { file_version: "CRC test,
        // one two" }, so the message encoding and the CRC agree with
        // TensorFlow's at once.
        let event = Event {
            what: Some(crate::proto::event::What::FileVersion(
                "CRC test, one two".into(),
            )),
            ..Default::default()
        };
        assert_eq!(event.encode_to_vec(), b"\x1a\x11CRC test, one two");
    }

    #[test]
    fn frame_layout() {
        let mut out = Vec::new();
        frame_record(b"abc", &mut out);
        assert_eq!(out.len(), 12 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(
            &out[8..12],
            &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes()
        );
        assert_eq!(&out[12..15], b"abc");
        assert_eq!(&out[15..], &masked_crc32c(b"abc").to_le_bytes());
    }
}
