//! Queries on DataFusion: one `SessionContext` per statement around one engine snapshot, with
//! StarRocks' `FILES(...)` calls turned into registered tables and column names matched
//! case-insensitively as StarRocks matches them (module `names`).

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, ParquetReadOptions, SQLOptions, SessionConfig, SessionContext,
};
use shale_engine::Engine;

use crate::error::{Result, SqlError};
use crate::group_by::DictionaryGroupBy;
use crate::parser::extract_files_table_function;
use crate::provider::{CATALOG_NAME, ShaleCatalog};

mod names;
use names::Header;

/// Threads DataFusion splits a query over.
pub const TARGET_PARTITIONS: usize = 2;

/// The default schema of a context when the session has no current database; no database
/// is expected to have this name (a database really called so would be used as the default).
pub const NO_DATABASE: &str = "__no_database__";

/// Catalog and schema that hold the tables standing for `FILES(...)` calls.
const FILES_CATALOG: &str = "__shale_files";
const FILES_SCHEMA: &str = "files";

/// A DataFusion context seeing the engine as of now, resolving unqualified table names in
/// `database`.
pub fn context(engine: &Engine, database: Option<&str>) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(TARGET_PARTITIONS)
        .with_create_default_catalog_and_schema(false)
        // With no current database an unqualified name resolves nowhere.
        .with_default_catalog_and_schema(CATALOG_NAME, database.unwrap_or(NO_DATABASE));
    // StarRocks is MySQL-flavoured: backquoted identifiers, double-quoted strings.
    config = config.set_str("datafusion.sql_parser.dialect", "MySQL");
    // And NULL sorts as the smallest value: first in ASC, last in DESC.
    config = config.set_str("datafusion.sql_parser.default_null_ordering", "nulls_min");
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(DictionaryGroupBy::default()))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_catalog(
        CATALOG_NAME,
        Arc::new(ShaleCatalog::new(engine.clone(), engine.snapshot())),
    );
    ctx
}

/// Plans a query (`SELECT`/`WITH`/`VALUES`), its `FILES(...)` calls registered first and its
/// column names folded as StarRocks matches them (module `names`). Also returns how the result's
/// columns are headed.
async fn plan_with_headers(ctx: &SessionContext, sql: &str) -> Result<(DataFrame, Vec<Header>)> {
    let sql = register_files(ctx, sql).await?;
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(&sql, &dialect)?;
    let headers = names::headers(&statement);
    let columns = names::Columns::of(ctx, &statement).await?;
    names::fold(&mut statement, &columns);
    let plan = state.statement_to_plan(statement).await?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)?;
    Ok((ctx.execute_logical_plan(plan).await?, headers))
}

/// Plans a query (`SELECT`/`WITH`/`VALUES`), its `FILES(...)` calls registered first.
pub async fn plan(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    Ok(plan_with_headers(ctx, sql).await?.0)
}

/// Runs a query to completion; the result's columns are headed as StarRocks heads them.
pub async fn collect(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let (df, headers) = plan_with_headers(ctx, sql).await?;
    let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    let (planned, batches) = without_string_views(planned, batches)?;
    let schema = names::rename(&planned, &headers);
    if Arc::ptr_eq(&schema, &planned) {
        return Ok((schema, batches));
    }
    Ok((schema.clone(), names::rebind(&schema, batches)?))
}

/// A result with its `Utf8View` columns as `Utf8`: tables show DataFusion their strings as views
/// (module `provider`), users get the type their VARCHAR columns have everywhere else.
fn without_string_views(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if !schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Utf8View)
    {
        return Ok((schema, batches));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let batches = batches
        .into_iter()
        .map(|batch| {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(
                    |(column, field)| match column.data_type() == field.data_type() {
                        true => Ok(column.clone()),
                        false => cast(column, field.data_type()),
                    },
                )
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Starts a query, for a caller that consumes its batches one at a time.
pub async fn stream(ctx: &SessionContext, sql: &str) -> Result<SendableRecordBatchStream> {
    Ok(plan(ctx, sql).await?.execute_stream().await?)
}

/// Registers a table for each `FILES(...)` call in `sql` and returns the text with each call
/// replaced by its table's name.
async fn register_files(ctx: &SessionContext, sql: &str) -> Result<String> {
    let calls = extract_files_table_function(sql)?;
    if calls.is_empty() {
        return Ok(sql.to_string());
    }
    let schema = Arc::new(MemorySchemaProvider::new());
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(FILES_SCHEMA, schema.clone())?;
    ctx.register_catalog(FILES_CATALOG, Arc::new(catalog));
    let mut text = String::with_capacity(sql.len());
    let mut copied = 0;
    for (index, call) in calls.iter().enumerate() {
        let property = |key: &str| {
            call.properties
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        };
        let path = property("path")
            .ok_or_else(|| SqlError::Invalid("FILES() needs a \"path\" property".into()))?;
        let format = property("format")
            .ok_or_else(|| SqlError::Invalid("FILES() needs a \"format\" property".into()))?;
        // A single file keeps its own extension; a directory or glob takes the format's.
        let extension = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|_| std::path::Path::new(path).is_file())
            .map(|e| format!(".{e}"));
        let df = match format.to_ascii_lowercase().as_str() {
            "parquet" => {
                let mut options = ParquetReadOptions::default();
                if let Some(e) = &extension {
                    options.file_extension = e.as_str();
                }
                ctx.read_parquet(path, options).await?
            }
            "csv" => {
                // StarRocks reads CSV without a header unless told to skip one.
                let skip_header = property("csv.skip_header").unwrap_or("0");
                let has_header = match skip_header.parse::<u32>() {
                    Ok(0) => false,
                    Ok(1) => true,
                    _ => {
                        return Err(SqlError::NotSupported(format!(
                            "\"csv.skip_header\" = \"{skip_header}\" (0 or 1 are)"
                        )));
                    }
                };
                let delimiter = match property("csv.column_separator").unwrap_or(",").as_bytes() {
                    [b] => *b,
                    [] => b',',
                    _ => {
                        return Err(SqlError::NotSupported(
                            "a multi-byte \"csv.column_separator\"".into(),
                        ));
                    }
                };
                let mut options = CsvReadOptions::new()
                    .has_header(has_header)
                    .delimiter(delimiter);
                if let Some(e) = &extension {
                    options = options.file_extension(e.as_str());
                }
                ctx.read_csv(path, options).await?
            }
            other => {
                return Err(SqlError::NotSupported(format!(
                    "FILES() format \"{other}\" (parquet and csv are)"
                )));
            }
        };
        let name = format!("f{index}");
        schema.register_table(name.clone(), df.into_view())?;
        text.push_str(sql.get(copied..call.byte_range.start).unwrap_or_default());
        text.push_str(&format!("{FILES_CATALOG}.{FILES_SCHEMA}.{name}"));
        copied = call.byte_range.end;
    }
    text.push_str(sql.get(copied..).unwrap_or_default());
    Ok(text)
}
