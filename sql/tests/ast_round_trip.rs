//! Any statement, rendered with `Display`, parses back to itself: the canonical rendering
//! quotes every identifier and string that needs it (reserved words, backquotes, quotes,
//! backslashes, unicode) and keeps every field.

use proptest::prelude::*;
use proptest::strategy::Union;
use shale_sql::ast::*;
use shale_sql::parser::parse_one;

fn ident() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        proptest::sample::select(
            &[
                "select",
                "Table",
                "tables",
                "partition",
                "force",
                "user",
                "on",
                "values",
                "if",
                "snapshot",
                "deep",
                "maxvalue",
                "a`b",
                "``",
                "1a",
                "a b",
                "é",
                "表",
                "x.y",
                "'",
                "\"",
                "\\",
            ][..]
        )
        .prop_map(str::to_string),
        "\\PC{1,6}",
    ]
    .boxed()
}

fn string() -> BoxedStrategy<String> {
    prop_oneof![
        "\\PC{0,10}",
        proptest::sample::select(&["", "'", "\"", "\\", "\\'", "it's", "a\\%b", "\\n", "a\nb"][..])
            .prop_map(str::to_string),
    ]
    .boxed()
}

fn number() -> impl Strategy<Value = String> {
    "-?[0-9]{1,6}(\\.[0-9]{1,3})?"
}

fn object_name() -> impl Strategy<Value = ObjectName> {
    (proptest::option::of(ident()), ident()).prop_map(|(db, name)| ObjectName { db, name })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        number().prop_map(Literal::Number),
        string().prop_map(Literal::String),
    ]
}

fn properties() -> impl Strategy<Value = Properties> {
    proptest::collection::vec((string(), string()), 0..3)
}

fn idents(min: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(ident(), min..4)
}

fn column() -> impl Strategy<Value = ColumnDef> {
    let type_name = (
        "[A-Za-z][A-Za-z0-9_]{0,8}",
        proptest::collection::vec(any::<u32>(), 0..=2),
    )
        .prop_map(|(name, params)| TypeName {
            name: name.to_ascii_uppercase(),
            params,
        });
    (
        ident(),
        type_name,
        any::<bool>(),
        proptest::option::of(literal()),
        proptest::option::of(string()),
    )
        .prop_map(|(name, data_type, nullable, default, comment)| ColumnDef {
            name,
            data_type,
            nullable,
            default,
            comment,
        })
}

fn range_values() -> impl Strategy<Value = Vec<PartitionValue>> {
    proptest::collection::vec(
        prop_oneof![
            Just(PartitionValue::MaxValue),
            number().prop_map(PartitionValue::Literal),
            string().prop_map(PartitionValue::Literal),
        ],
        1..3,
    )
}

fn range_bound() -> impl Strategy<Value = PartitionBound> {
    prop_oneof![
        range_values().prop_map(PartitionBound::LessThan),
        (range_values(), range_values())
            .prop_map(|(lower, upper)| PartitionBound::Fixed { lower, upper }),
    ]
}

fn list_bound() -> impl Strategy<Value = PartitionBound> {
    proptest::collection::vec(proptest::collection::vec(string(), 1..3), 1..3)
        .prop_map(PartitionBound::In)
}

fn partition(bound: impl Strategy<Value = PartitionBound>) -> impl Strategy<Value = PartitionDef> {
    (ident(), bound).prop_map(|(name, bound)| PartitionDef { name, bound })
}

fn partitioning() -> impl Strategy<Value = Partitioning> {
    prop_oneof![
        (
            idents(1),
            proptest::collection::vec(partition(range_bound()), 0..3)
        )
            .prop_map(|(columns, partitions)| Partitioning {
                kind: PartitionKind::Range,
                columns,
                partitions,
            }),
        (
            idents(1),
            proptest::collection::vec(partition(list_bound()), 0..3)
        )
            .prop_map(|(columns, partitions)| Partitioning {
                kind: PartitionKind::List,
                columns,
                partitions,
            }),
    ]
}

fn create_table() -> impl Strategy<Value = Statement> {
    let keys = proptest::option::of(
        (
            proptest::sample::select(
                &[
                    KeysKind::Duplicate,
                    KeysKind::Aggregate,
                    KeysKind::Unique,
                    KeysKind::Primary,
                ][..],
            ),
            idents(1),
        )
            .prop_map(|(kind, columns)| TableKeys { kind, columns }),
    );
    let buckets = proptest::option::of(1..=u32::MAX);
    let distribution = proptest::option::of(prop_oneof![
        (idents(1), buckets.clone())
            .prop_map(|(columns, buckets)| Distribution::Hash { columns, buckets }),
        buckets.prop_map(|buckets| Distribution::Random { buckets }),
    ]);
    (
        (
            object_name(),
            any::<bool>(),
            proptest::collection::vec(column(), 1..4),
        ),
        (
            proptest::option::of(ident()),
            keys,
            proptest::option::of(string()),
        ),
        (
            proptest::option::of(partitioning()),
            distribution,
            properties(),
        ),
    )
        .prop_map(
            |(
                (name, if_not_exists, columns),
                (engine, keys, comment),
                (partitioning, distribution, properties),
            )| {
                Statement::CreateTable(Box::new(CreateTable {
                    name,
                    if_not_exists,
                    columns,
                    engine,
                    keys,
                    comment,
                    partitioning,
                    distribution,
                    properties,
                }))
            },
        )
}

fn table_refs() -> impl Strategy<Value = Vec<TableRef>> {
    proptest::collection::vec(
        (object_name(), idents(0), proptest::option::of(ident())).prop_map(
            |(name, partitions, alias)| TableRef {
                name,
                partitions,
                alias,
            },
        ),
        0..3,
    )
}

fn snapshot_filter() -> impl Strategy<Value = SnapshotFilter> {
    prop_oneof![
        Just(SnapshotFilter::All),
        string().prop_map(SnapshotFilter::Named),
        (string(), string())
            .prop_map(|(name, timestamp)| SnapshotFilter::NamedAt { name, timestamp }),
        proptest::collection::vec(string(), 1..4).prop_map(SnapshotFilter::AnyOf),
    ]
}

fn user() -> impl Strategy<Value = UserIdentity> {
    (
        string().prop_filter("user names are not empty", |name| !name.is_empty()),
        proptest::option::of(string()),
    )
        .prop_map(|(name, host)| UserIdentity { name, host })
}

fn backup_family() -> impl Strategy<Value = Statement> {
    let repository = (
        ident(),
        any::<bool>(),
        proptest::option::of(ident()),
        string(),
        properties(),
    )
        .prop_map(|(name, read_only, broker, location, properties)| {
            Statement::CreateRepository(CreateRepository {
                name,
                read_only,
                broker,
                location,
                properties,
            })
        });
    let backup = (
        proptest::option::of(ident()),
        ident(),
        ident(),
        table_refs(),
        properties(),
    )
        .prop_map(|(database, snapshot, repository, tables, properties)| {
            Statement::Backup(Backup {
                database,
                snapshot,
                repository,
                tables,
                properties,
            })
        });
    let restore = (
        (proptest::option::of(ident()), ident(), ident()),
        (proptest::option::of(ident()), table_refs(), properties()),
    )
        .prop_map(
            |((database, snapshot, repository), (source_database, tables, properties))| {
                Statement::Restore(Restore {
                    database,
                    snapshot,
                    repository,
                    source_database,
                    tables,
                    properties,
                })
            },
        );
    let database = proptest::option::of(ident());
    Union::new(vec![
        repository.boxed(),
        backup.boxed(),
        restore.boxed(),
        ident()
            .prop_map(|name| Statement::DropRepository { name })
            .boxed(),
        Just(Statement::ShowRepositories).boxed(),
        database
            .clone()
            .prop_map(|database| Statement::ShowBackup { database })
            .boxed(),
        database
            .clone()
            .prop_map(|database| Statement::ShowRestore { database })
            .boxed(),
        database
            .clone()
            .prop_map(|database| Statement::CancelBackup { database })
            .boxed(),
        database
            .prop_map(|database| Statement::CancelRestore { database })
            .boxed(),
        (ident(), snapshot_filter())
            .prop_map(|(repository, filter)| Statement::ShowSnapshot { repository, filter })
            .boxed(),
        (
            ident(),
            snapshot_filter().prop_filter("DROP needs a filter", |filter| {
                *filter != SnapshotFilter::All
            }),
            any::<bool>(),
        )
            .prop_map(|(repository, filter, force)| Statement::DropSnapshot {
                repository,
                filter,
                force,
            })
            .boxed(),
        (ident(), ident(), any::<bool>())
            .prop_map(|(snapshot, repository, deep)| Statement::VerifySnapshot {
                snapshot,
                repository,
                deep,
            })
            .boxed(),
    ])
}

fn other_statements() -> impl Strategy<Value = Statement> {
    let action = prop_oneof![
        (
            partition(prop_oneof![range_bound(), list_bound()]),
            any::<bool>()
        )
            .prop_map(
                |(partition, if_not_exists)| AlterTableAction::AddPartition {
                    partition,
                    if_not_exists,
                }
            ),
        (ident(), any::<bool>(), any::<bool>()).prop_map(|(name, if_exists, force)| {
            AlterTableAction::DropPartition {
                name,
                if_exists,
                force,
            }
        }),
    ];
    let insert_source = prop_oneof![
        proptest::collection::vec(proptest::collection::vec(literal(), 1..4), 1..3)
            .prop_map(InsertSource::Values),
        literal().prop_map(|literal| InsertSource::Query {
            sql: format!("SELECT {literal}"),
        }),
    ];
    Union::new(vec![
        literal()
            .prop_map(|literal| Statement::Query {
                sql: format!("SELECT {literal}, 1"),
            })
            .boxed(),
        (ident(), any::<bool>())
            .prop_map(|(name, if_not_exists)| Statement::CreateDatabase {
                name,
                if_not_exists,
            })
            .boxed(),
        (ident(), any::<bool>(), any::<bool>())
            .prop_map(|(name, if_exists, force)| Statement::DropDatabase {
                name,
                if_exists,
                force,
            })
            .boxed(),
        ident()
            .prop_map(|database| Statement::Use { database })
            .boxed(),
        Just(Statement::ShowDatabases).boxed(),
        proptest::option::of(ident())
            .prop_map(|database| Statement::ShowTables { database })
            .boxed(),
        object_name()
            .prop_map(|table| Statement::ShowPartitions { table })
            .boxed(),
        object_name()
            .prop_map(|table| Statement::Describe { table })
            .boxed(),
        object_name()
            .prop_map(|table| Statement::ShowCreateTable { table })
            .boxed(),
        (object_name(), action)
            .prop_map(|(table, action)| Statement::AlterTable { table, action })
            .boxed(),
        (object_name(), idents(0))
            .prop_map(|(table, partitions)| Statement::TruncateTable { table, partitions })
            .boxed(),
        (object_name(), any::<bool>(), any::<bool>())
            .prop_map(|(table, if_exists, force)| Statement::DropTable {
                table,
                if_exists,
                force,
            })
            .boxed(),
        (object_name(), idents(0), insert_source)
            .prop_map(|(table, columns, source)| {
                Statement::Insert(Insert {
                    table,
                    columns,
                    source,
                })
            })
            .boxed(),
        (user(), any::<bool>(), proptest::option::of(string()))
            .prop_map(|(user, if_not_exists, password)| Statement::CreateUser {
                user,
                if_not_exists,
                password,
            })
            .boxed(),
        (user(), any::<bool>())
            .prop_map(|(user, if_exists)| Statement::DropUser { user, if_exists })
            .boxed(),
        (idents(1), user())
            .prop_map(|(roles, user)| Statement::GrantRole { roles, user })
            .boxed(),
        (idents(1), user())
            .prop_map(|(roles, user)| Statement::RevokeRole { roles, user })
            .boxed(),
        proptest::option::of(user())
            .prop_map(|user| Statement::ShowGrants { user })
            .boxed(),
    ])
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![create_table(), backup_family(), other_statements()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_parses_back_to_the_same_statement(statement in statement()) {
        let canonical = statement.to_string();
        prop_assert_eq!(parse_one(&canonical), Ok(statement), "canonical text: {}", canonical);
    }
}
