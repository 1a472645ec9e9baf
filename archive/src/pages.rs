//! Parquet column chunks decoded with one zstd decompression context per thread.
//!
//! parquet 60.1 builds a codec for every column chunk it reads, and its zstd codec creates a
//! compression *and* a decompression context each time (`ZSTDCodec::new`). On x86 creating either
//! asks the CPU whether it has BMI2 (`cpuid`), which in a virtual machine traps to the
//! hypervisor: on this project's VM the two contexts were 19 % of a `ringbolt replay`'s samples,
//! more than the decompression itself (an archive file holds ~20 column chunks of a few thousand
//! rows). On aarch64 there is no `cpuid`, and the contexts still cost their set-up.
//!
//! Here parquet's own page reader reads the chunk as if it were uncompressed (its metadata says
//! so), and every page it returns is decompressed with the calling thread's one context. Pages
//! keep their meaning: a data page v1 or a dictionary page is one zstd frame; a data page v2
//! keeps its definition and repetition levels uncompressed in front of the frame. Chunks of any
//! other codec go to parquet's reader unchanged.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReader, RowGroups};
use parquet::arrow::{ProjectionMask, parquet_to_arrow_field_levels};
use parquet::basic::Compression;
use parquet::column::page::{Page, PageIterator, PageMetadata, PageReader};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, RowGroupMetaData};
use parquet::file::serialized_reader::SerializedPageReader;

thread_local! {
    /// This thread's zstd decompression context, created on first use.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// A reader of the `projection` of a Parquet file held whole in `bytes`, `batch_size` rows a
/// batch, its zstd pages decompressed with the thread's context.
///
/// # Errors
/// Columns parquet cannot map to Arrow with the file's schema.
pub fn record_batches(
    bytes: Bytes,
    metadata: &ArrowReaderMetadata,
    projection: ProjectionMask,
    batch_size: usize,
) -> Result<ParquetRecordBatchReader> {
    let levels = parquet_to_arrow_field_levels(
        metadata.parquet_schema(),
        projection,
        Some(metadata.schema().fields()),
    )?;
    let chunks = FileChunks {
        bytes: Arc::new(bytes),
        metadata: Arc::clone(metadata.metadata()),
    };
    let rows = chunks.num_rows().max(1);
    ParquetRecordBatchReader::try_new_with_row_groups(&levels, &chunks, batch_size.min(rows), None)
}

/// Every row group of one in-memory file.
struct FileChunks {
    bytes: Arc<Bytes>,
    metadata: Arc<ParquetMetaData>,
}

impl RowGroups for FileChunks {
    fn num_rows(&self) -> usize {
        self.metadata
            .row_groups()
            .iter()
            .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
            .sum()
    }

    fn column_chunks(&self, column: usize) -> Result<Box<dyn PageIterator>> {
        Ok(Box::new(ColumnChunks {
            bytes: Arc::clone(&self.bytes),
            metadata: Arc::clone(&self.metadata),
            column,
            next_row_group: 0,
        }))
    }

    fn row_groups(&self) -> Box<dyn Iterator<Item = &RowGroupMetaData> + '_> {
        Box::new(self.metadata.row_groups().iter())
    }

    fn metadata(&self) -> &ParquetMetaData {
        &self.metadata
    }
}

/// One column's chunks, row group by row group.
struct ColumnChunks {
    bytes: Arc<Bytes>,
    metadata: Arc<ParquetMetaData>,
    column: usize,
    next_row_group: usize,
}

impl ColumnChunks {
    fn page_reader(&self, row_group: usize) -> Result<Box<dyn PageReader>> {
        let rg = self.metadata.row_group(row_group);
        let chunk = rg.column(self.column);
        let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
        let bytes = Arc::clone(&self.bytes);
        if !matches!(chunk.compression(), Compression::ZSTD(_)) {
            return Ok(Box::new(SerializedPageReader::new(
                bytes, chunk, rows, None,
            )?));
        }
        let stored = chunk
            .clone()
            .into_builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build()?;
        Ok(Box::new(ZstdPages {
            inner: SerializedPageReader::new(bytes, &stored, rows, None)?,
        }))
    }
}

impl Iterator for ColumnChunks {
    type Item = Result<Box<dyn PageReader>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next_row_group >= self.metadata.num_row_groups() {
            return None;
        }
        let row_group = self.next_row_group;
        self.next_row_group += 1;
        Some(self.page_reader(row_group))
    }
}

impl PageIterator for ColumnChunks {}

/// Parquet's page reader over a zstd chunk read as stored; pages come out decompressed.
struct ZstdPages {
    inner: SerializedPageReader<Bytes>,
}

impl Iterator for ZstdPages {
    type Item = Result<Page>;

    fn next(&mut self) -> Option<Self::Item> {
        self.get_next_page().transpose()
    }
}

impl PageReader for ZstdPages {
    fn get_next_page(&mut self) -> Result<Option<Page>> {
        self.inner.get_next_page()?.map(decompress_page).transpose()
    }

    fn peek_next_page(&mut self) -> Result<Option<PageMetadata>> {
        self.inner.peek_next_page()
    }

    fn skip_next_page(&mut self) -> Result<()> {
        self.inner.skip_next_page()
    }

    fn at_record_boundary(&mut self) -> Result<bool> {
        self.inner.at_record_boundary()
    }
}

/// `page` with its compressed part decompressed.
fn decompress_page(mut page: Page) -> Result<Page> {
    match &mut page {
        Page::DataPage { buf, .. } | Page::DictionaryPage { buf, .. } => {
            *buf = decompress(buf, 0)?;
        }
        Page::DataPageV2 {
            buf,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed: true,
            ..
        } => {
            let levels = *def_levels_byte_len as usize + *rep_levels_byte_len as usize;
            *buf = decompress(buf, levels)?;
        }
        Page::DataPageV2 { .. } => {}
    }
    Ok(page)
}

/// `buf`'s first `stored` bytes as they are, then its zstd frame decompressed.
fn decompress(buf: &Bytes, stored: usize) -> Result<Bytes> {
    if stored > buf.len() {
        return Err(ParquetError::General(format!(
            "page levels of {stored} bytes in a page of {} bytes",
            buf.len()
        )));
    }
    let frame = &buf[stored..];
    if frame.is_empty() {
        // A page v2 of nulls only: nothing after its levels.
        return Ok(buf.clone());
    }
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) => usize::try_from(size)
            .map_err(|_| ParquetError::General(format!("zstd frame of {size} bytes")))?,
        // A frame written without its size (a streaming writer): rare, so a one-off context.
        Ok(None) => {
            let mut out = buf[..stored].to_vec();
            out.extend(zstd::decode_all(frame)?);
            return Ok(Bytes::from(out));
        }
        Err(_) => return Err(ParquetError::General("page is not a zstd frame".to_owned())),
    };
    let mut out = Vec::with_capacity(stored + size);
    out.extend_from_slice(&buf[..stored]);
    DECOMPRESSOR.with_borrow_mut(|slot| -> Result<()> {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        let mut cursor = Cursor::new(&mut out);
        cursor.set_position(stored as u64);
        decompressor.decompress_to_buffer(frame, &mut cursor)?;
        Ok(())
    })?;
    if out.len() != stored + size {
        return Err(ParquetError::General(format!(
            "zstd frame decompressed to {} bytes, its header says {size}",
            out.len() - stored
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Array, ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, UInt32Array,
        types::Int32Type,
    };
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::basic::ZstdLevel;
    use parquet::file::properties::{WriterProperties, WriterVersion};

    /// 10,000 rows: plain, nullable (all-null stretches), and dictionary columns.
    fn batch() -> RecordBatch {
        let n = 10_000_i64;
        let ts = Int64Array::from_iter_values((0..n).map(|i| 1_700_000_000_000 + i * 37));
        let sparse = UInt32Array::from_iter((0..n).map(|i| (i % 3000 > 2000).then_some(i as u32)));
        let names = ["btc-usd", "eth-usd", "sol-usd"];
        let dict: DictionaryArray<Int32Type> = (0..n).map(|i| names[(i % 3) as usize]).collect();
        let text =
            StringArray::from_iter_values((0..n).map(|i| format!("row-{}", i * 7919 % 1000)));
        RecordBatch::try_from_iter([
            ("ts", Arc::new(ts) as ArrayRef),
            ("sparse", Arc::new(sparse) as ArrayRef),
            ("name", Arc::new(dict) as ArrayRef),
            ("text", Arc::new(text) as ArrayRef),
        ])
        .unwrap()
    }

    fn write(props: WriterProperties) -> Bytes {
        let batch = batch();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
        // Two writes, small row groups: several chunks per column.
        w.write(&batch).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    fn zstd_props(version: WriterVersion) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
            .set_writer_version(version)
            .set_max_row_group_row_count(Some(6_000))
            .set_data_page_row_count_limit(1_000)
            .build()
    }

    /// Ours and parquet's reader, same projection: the same batches.
    fn assert_same(bytes: &Bytes, columns: &[usize]) {
        let meta = ArrowReaderMetadata::load(bytes, ArrowReaderOptions::default()).unwrap();
        let mask = ProjectionMask::roots(meta.parquet_schema(), columns.iter().copied());
        let ours: Vec<RecordBatch> = record_batches(bytes.clone(), &meta, mask.clone(), 4_096)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let theirs: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), meta)
                .with_projection(mask)
                .with_batch_size(4_096)
                .build()
                .unwrap()
                .map(Result::unwrap)
                .collect();
        assert_eq!(
            ours.iter().map(RecordBatch::num_rows).sum::<usize>(),
            20_000
        );
        assert_eq!(ours, theirs);
        assert!(!ours[0].column(0).is_empty());
    }

    #[test]
    fn zstd_pages_v1_and_v2_read_as_parquet_reads_them() {
        for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
            let bytes = write(zstd_props(version));
            let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default()).unwrap();
            assert!(meta.metadata().num_row_groups() > 1, "{version:?}");
            assert!(matches!(
                meta.metadata().row_group(0).column(0).compression(),
                Compression::ZSTD(_)
            ));
            assert_same(&bytes, &[0, 1, 2, 3]);
            assert_same(&bytes, &[2, 1]);
        }
    }

    #[test]
    fn uncompressed_chunks_go_to_parquets_reader() {
        let props = WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build();
        assert_same(&write(props), &[0, 1, 2, 3]);
    }

    #[test]
    fn a_damaged_frame_is_an_error_not_a_panic() {
        let bytes = write(zstd_props(WriterVersion::PARQUET_1_0));
        let meta = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::default()).unwrap();
        // Break the magic number of the chunk's first zstd frame (its first page's data).
        let (start, len) = meta.metadata().row_group(0).column(0).byte_range();
        let chunk = (start as usize)..(start + len) as usize;
        let magic = bytes[chunk.clone()]
            .windows(4)
            .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
            .expect("a zstd frame in the chunk");
        let mut damaged = bytes.to_vec();
        damaged[chunk.start + magic] ^= 0xff;
        let mask = ProjectionMask::roots(meta.parquet_schema(), [0]);
        let read: Result<Vec<RecordBatch>, _> =
            record_batches(Bytes::from(damaged), &meta, mask, 4_096)
                .unwrap()
                .collect();
        assert!(read.is_err());
    }

    #[test]
    fn a_frame_without_its_size_still_decompresses() {
        let payload: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut frame = Vec::new();
        let mut enc = zstd::stream::Encoder::new(&mut frame, 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &payload).unwrap();
        enc.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
            None
        );
        let mut buf = b"LEVELS".to_vec();
        buf.extend_from_slice(&frame);
        let out = decompress(&Bytes::from(buf), 6).unwrap();
        assert_eq!(&out[..6], b"LEVELS");
        assert_eq!(&out[6..], &payload[..]);
        assert!(decompress(&Bytes::from_static(b"ab"), 3).is_err());
        assert!(decompress(&Bytes::from_static(b"not zstd at all"), 0).is_err());
    }
}
