//! Table definitions between the AST and the engine, and the SHOW/DESC result sets that
//! describe tables.

use std::collections::BTreeMap;

use shale_engine::{
    Column, ColumnType, Distribution, PartitionDefinition, PartitionValues, Partitioning, Table,
    TableDefinition,
};

use crate::ast;
use crate::error::{Result, SqlError};
use crate::result::{Cell, QueryResult, build};

/// Buckets of a table whose `DISTRIBUTED BY` gives no `BUCKETS n` (or which has no
/// `DISTRIBUTED BY` at all). StarRocks picks a count automatically from the cluster size; an
/// embedded store has one node, so one bucket.
pub const BUCKETS_DEFAULT: u32 = 1;

/// The engine's definition of a `CREATE TABLE`, or why shale cannot create it.
pub fn table_definition(create: &ast::CreateTable) -> Result<TableDefinition> {
    if let Some(engine) = &create.engine
        && !engine.eq_ignore_ascii_case("olap")
    {
        return Err(SqlError::NotSupported(format!("ENGINE = {engine}")));
    }
    let key_columns: Vec<String> = match &create.keys {
        None => Vec::new(),
        Some(keys) => match keys.kind {
            ast::KeysKind::Duplicate => keys.columns.clone(),
            ast::KeysKind::Aggregate => {
                return Err(SqlError::NotSupported(
                    "AGGREGATE KEY (only DUPLICATE KEY tables are)".into(),
                ));
            }
            ast::KeysKind::Unique => {
                return Err(SqlError::NotSupported(
                    "UNIQUE KEY (only DUPLICATE KEY tables are)".into(),
                ));
            }
            ast::KeysKind::Primary => {
                return Err(SqlError::NotSupported(
                    "PRIMARY KEY (only DUPLICATE KEY tables are)".into(),
                ));
            }
        },
    };
    for key in &key_columns {
        if !create
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(key))
        {
            return Err(SqlError::Invalid(format!(
                "Key column '{key}' does not exist in table"
            )));
        }
    }
    let mut columns = Vec::with_capacity(create.columns.len());
    for def in &create.columns {
        if def
            .default
            .as_ref()
            .is_some_and(|d| *d != ast::Literal::Null)
        {
            return Err(SqlError::NotSupported(format!(
                "DEFAULT on column '{}' (missing values are NULL)",
                def.name
            )));
        }
        let column_type = ColumnType::from_sql(&def.data_type.name, &def.data_type.params)?;
        let mut column = Column::new(def.name.clone(), column_type);
        column.nullable = def.nullable;
        column.is_key = key_columns
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&def.name));
        columns.push(column);
    }
    let mut definition = TableDefinition::new(create.name.name.clone(), columns);
    if let Some(partitioning) = &create.partitioning {
        let [column] = partitioning.columns.as_slice() else {
            return Err(SqlError::NotSupported(
                "partitioning on more than one column".into(),
            ));
        };
        definition.partitioning = match partitioning.kind {
            ast::PartitionKind::Range => Partitioning::Range {
                column: column.clone(),
            },
            ast::PartitionKind::List => Partitioning::List {
                column: column.clone(),
            },
        };
        definition.partitions = partitioning
            .partitions
            .iter()
            .map(partition_definition)
            .collect::<Result<_>>()?;
    }
    definition.distribution = match &create.distribution {
        None => Distribution::hash(Vec::new(), BUCKETS_DEFAULT),
        Some(ast::Distribution::Hash { columns, buckets }) => {
            Distribution::hash(columns.clone(), buckets.unwrap_or(BUCKETS_DEFAULT))
        }
        Some(ast::Distribution::Random { buckets }) => {
            Distribution::hash(Vec::new(), buckets.unwrap_or(BUCKETS_DEFAULT))
        }
    };
    definition.properties = create
        .properties
        .iter()
        .cloned()
        .collect::<BTreeMap<_, _>>();
    Ok(definition)
}

/// The engine's definition of one partition of a single-column partitioning.
pub fn partition_definition(def: &ast::PartitionDef) -> Result<PartitionDefinition> {
    let one = |values: &[ast::PartitionValue]| -> Result<Option<String>> {
        match values {
            [ast::PartitionValue::Literal(v)] => Ok(Some(v.clone())),
            [ast::PartitionValue::MaxValue] => Ok(None),
            _ => Err(SqlError::NotSupported(format!(
                "partition {} with {} values (partitioning is on one column)",
                def.name,
                values.len()
            ))),
        }
    };
    let values = match &def.bound {
        ast::PartitionBound::LessThan(upper) => PartitionValues::LessThan(one(upper)?),
        ast::PartitionBound::Fixed { lower, upper } => PartitionValues::Range {
            lower: one(lower)?,
            upper: one(upper)?,
        },
        ast::PartitionBound::In(tuples) => PartitionValues::In(
            tuples
                .iter()
                .map(|tuple| match tuple.as_slice() {
                    [v] => Ok(v.clone()),
                    _ => Err(SqlError::NotSupported(format!(
                        "partition {} with multi-column values",
                        def.name
                    ))),
                })
                .collect::<Result<_>>()?,
        ),
    };
    Ok(PartitionDefinition {
        name: def.name.clone(),
        values,
    })
}

/// `DESC t`: StarRocks' Field, Type, Null, Key, Default, Extra.
pub fn describe(table: &Table) -> Result<QueryResult> {
    let rows = table
        .schema
        .columns()
        .iter()
        .map(|c| {
            vec![
                Cell::from(c.name.as_str()),
                Cell::from(c.column_type.to_string()),
                Cell::from(if c.nullable { "YES" } else { "NO" }),
                Cell::from(if c.is_key { "true" } else { "false" }),
                Cell::Str(None),
                Cell::from(""),
            ]
        })
        .collect();
    build(
        &[
            ("Field", false),
            ("Type", false),
            ("Null", false),
            ("Key", false),
            ("Default", false),
            ("Extra", false),
        ],
        rows,
    )
}

/// `SHOW PARTITIONS FROM t`, with StarRocks' 17 columns in StarRocks' order. Columns shale has
/// no notion of get StarRocks' values for a healthy single-replica partition.
pub fn show_partitions(table: &Table) -> Result<QueryResult> {
    let column = table.partition_column();
    let column_type = column.map(|c| &c.column_type);
    let replication = table
        .properties
        .get("replication_num")
        .cloned()
        .unwrap_or_else(|| "1".into());
    let rows = table
        .partitions
        .iter()
        .map(|p| {
            vec![
                Cell::from(p.id),
                Cell::from(p.name.as_str()),
                Cell::from(p.version),
                Cell::Str(None),
                Cell::Int(Some(0)),
                Cell::from("NORMAL"),
                Cell::from(column.map_or(String::new(), |c| c.name.clone())),
                Cell::from(p.bound.describe(column_type)),
                Cell::from(if table.distribution.columns.is_empty() {
                    "ALL KEY".to_string()
                } else {
                    table.distribution.columns.join(", ")
                }),
                Cell::from(u64::from(table.distribution.buckets)),
                Cell::from(replication.as_str()),
                Cell::from("HDD"),
                Cell::from("9999-12-31 23:59:59"),
                Cell::Str(None),
                Cell::from(format_bytes(p.data_size())),
                Cell::from("false"),
                Cell::from(p.row_count()),
            ]
        })
        .collect();
    build(
        &[
            ("PartitionId", true),
            ("PartitionName", false),
            ("VisibleVersion", true),
            ("VisibleVersionTime", false),
            ("VisibleVersionHash", true),
            ("State", false),
            ("PartitionKey", false),
            ("Range", false),
            ("DistributionKey", false),
            ("Buckets", true),
            ("ReplicationNum", false),
            ("StorageMedium", false),
            ("CooldownTime", false),
            ("LastConsistencyCheckTime", false),
            ("DataSize", false),
            ("IsInMemory", false),
            ("RowCount", true),
        ],
        rows,
    )
}

/// Bytes the way StarRocks prints a data size: `0B`, `1.500KB`, `2.000MB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.3}{}", UNITS[unit])
}

/// `SHOW CREATE TABLE t`: Table, Create Table.
pub fn show_create_table(db: &str, table: &Table) -> Result<QueryResult> {
    let columns = table
        .schema
        .columns()
        .iter()
        .map(|c| ast::ColumnDef {
            name: c.name.clone(),
            data_type: type_name(&c.column_type),
            nullable: c.nullable,
            default: None,
            comment: None,
        })
        .collect();
    let keys: Vec<String> = table
        .schema
        .columns()
        .iter()
        .filter(|c| c.is_key)
        .map(|c| c.name.clone())
        .collect();
    let column_type = table.partition_column().map(|c| c.column_type);
    let partitioning = match &table.partitioning {
        Partitioning::Unpartitioned => None,
        Partitioning::Range { column } | Partitioning::List { column } => {
            let kind = match table.partitioning {
                Partitioning::List { .. } => ast::PartitionKind::List,
                _ => ast::PartitionKind::Range,
            };
            let literal = |v: &Option<String>| match v {
                Some(v) => ast::PartitionValue::Literal(v.clone()),
                None => ast::PartitionValue::MaxValue,
            };
            let partitions = table
                .partitions
                .iter()
                .map(|p| {
                    let bound = match p.bound.to_values(column_type.as_ref()) {
                        PartitionValues::Range { lower: None, upper } => {
                            ast::PartitionBound::LessThan(vec![literal(&upper)])
                        }
                        PartitionValues::Range { lower, upper } => ast::PartitionBound::Fixed {
                            lower: vec![literal(&lower)],
                            upper: vec![literal(&upper)],
                        },
                        PartitionValues::LessThan(upper) => {
                            ast::PartitionBound::LessThan(vec![literal(&upper)])
                        }
                        PartitionValues::In(values) => {
                            ast::PartitionBound::In(values.into_iter().map(|v| vec![v]).collect())
                        }
                        PartitionValues::All => {
                            ast::PartitionBound::LessThan(vec![ast::PartitionValue::MaxValue])
                        }
                    };
                    ast::PartitionDef {
                        name: p.name.clone(),
                        bound,
                    }
                })
                .collect();
            Some(ast::Partitioning {
                kind,
                columns: vec![column.clone()],
                partitions,
            })
        }
    };
    let buckets = Some(table.distribution.buckets);
    let distribution = if table.distribution.columns.is_empty() {
        ast::Distribution::Random { buckets }
    } else {
        ast::Distribution::Hash {
            columns: table.distribution.columns.clone(),
            buckets,
        }
    };
    let create = ast::Statement::CreateTable(Box::new(ast::CreateTable {
        name: ast::ObjectName {
            db: Some(db.to_string()),
            name: table.name.clone(),
        },
        if_not_exists: false,
        columns,
        engine: Some("OLAP".into()),
        keys: (!keys.is_empty()).then_some(ast::TableKeys {
            kind: ast::KeysKind::Duplicate,
            columns: keys,
        }),
        comment: None,
        partitioning,
        distribution: Some(distribution),
        properties: table
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }));
    build(
        &[("Table", false), ("Create Table", false)],
        vec![vec![
            Cell::from(table.name.as_str()),
            Cell::from(create.to_string()),
        ]],
    )
}

/// A column type as the AST spells it: `VARCHAR(20)` is `VARCHAR` with `[20]`.
fn type_name(column_type: &ColumnType) -> ast::TypeName {
    let text = column_type.to_string();
    match text.split_once('(') {
        Some((name, rest)) => ast::TypeName {
            name: name.to_string(),
            params: rest
                .trim_end_matches(')')
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect(),
        },
        None => ast::TypeName {
            name: text,
            params: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_like_starrocks() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(1536), "1.500KB");
        assert_eq!(format_bytes(3 << 20), "3.000MB");
    }

    #[test]
    fn type_names_round_trip_through_the_ast() {
        let t = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        let name = type_name(&t);
        assert_eq!(ColumnType::from_sql(&name.name, &name.params).ok(), Some(t));
    }
}
