//! Parquet encoding of one batch into one file: zstd pages, dictionary encoding for the
//! low-cardinality columns (parquet falls back to plain when a dictionary stops paying),
//! DELTA_BINARY_PACKED for the monotone integer columns, page statistics on.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::tables::Table;

/// Writer settings for one table.
///
/// # Errors
/// An invalid zstd level.
pub fn properties(
    table: Table,
    zstd_level: i32,
    metadata: Vec<(String, String)>,
) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(zstd_level)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(true)
        .set_created_by(format!("ringbolt-archive {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(
            metadata
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect(),
        ));
    for column in table.delta_columns() {
        let path = ColumnPath::from(*column);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

/// Writes `batch` as a complete Parquet file at `path` (created or truncated) and fsyncs it.
/// Returns the file's size in bytes.
///
/// # Errors
/// Parquet and I/O errors.
pub fn write_file(
    path: &Path,
    batch: &RecordBatch,
    props: WriterProperties,
) -> Result<u64, crate::ArchiveError> {
    let file = File::create(path).map_err(|e| crate::ArchiveError::io(path, e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all()
        .map_err(|e| crate::ArchiveError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| crate::ArchiveError::io(path, e))?
        .len();
    Ok(len)
}

/// Streams every batch of `sources` (in order) into one new Parquet file at `path`, fsynced.
/// Returns the merged file's size.
///
/// # Errors
/// Parquet and I/O errors (e.g. sources whose schemas differ).
pub fn merge_files(
    sources: &[std::path::PathBuf],
    path: &Path,
    props: WriterProperties,
) -> Result<u64, crate::ArchiveError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::create(path).map_err(|e| crate::ArchiveError::io(path, e))?;
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut props = Some(props);
    for source in sources {
        let input = File::open(source).map_err(|e| crate::ArchiveError::io(source, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(input)?;
        // The file's Arrow schema keeps its metadata (scales, archive schema version); the
        // batches' schema may not, so the merged file is written with the file's.
        let schema = builder.schema().clone();
        let reader = builder.with_batch_size(65_536).build()?;
        for batch in reader {
            let batch = batch?;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(ArrowWriter::try_new(
                    file.try_clone()
                        .map_err(|e| crate::ArchiveError::io(path, e))?,
                    schema.clone(),
                    props.take(),
                )?),
            };
            w.write(&batch)?;
        }
    }
    if let Some(w) = writer {
        w.close()?;
    }
    file.sync_all()
        .map_err(|e| crate::ArchiveError::io(path, e))?;
    Ok(file
        .metadata()
        .map_err(|e| crate::ArchiveError::io(path, e))?
        .len())
}
