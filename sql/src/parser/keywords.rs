//! StarRocks' reserved keywords.
//!
//! A reserved keyword is never taken as an unquoted identifier: `CREATE DATABASE like` is an
//! error in StarRocks and here, while ``CREATE DATABASE `like` `` works. Keeping the same list
//! means a script that StarRocks accepts is accepted here and the other way round, and it lets
//! optional clauses that start with a reserved word (`PARTITION`, `AS`, `FORCE`, `ON`, ...)
//! follow a name without ambiguity.

/// StarRocks' reserved keywords (v3.x / v4.0 documentation), uppercase and sorted.
const RESERVED: &[&str] = &[
    "ADD",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ARRAY",
    "AS",
    "ASC",
    "BETWEEN",
    "BIGINT",
    "BITMAP",
    "BOTH",
    "BY",
    "CASE",
    "CHAR",
    "CHARACTER",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMPACTION",
    "CONVERT",
    "CREATE",
    "CROSS",
    "CUBE",
    "CURRENT_DATE",
    "CURRENT_ROLE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "CURRENT_USER",
    "DATABASE",
    "DATABASES",
    "DECIMAL",
    "DECIMAL128",
    "DECIMAL32",
    "DECIMAL64",
    "DECIMALV2",
    "DEFAULT",
    "DELETE",
    "DENSE_RANK",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "DUAL",
    "ELSE",
    "EXCEPT",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FIRST_VALUE",
    "FLOAT",
    "FOR",
    "FORCE",
    "FROM",
    "FULL",
    "FUNCTION",
    "GRANT",
    "GROUP",
    "GROUPING",
    "GROUPING_ID",
    "GROUPS",
    "HAVING",
    "HLL",
    "HOST",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INFILE",
    "INNER",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "JSON",
    "KEY",
    "KEYS",
    "KILL",
    "LAG",
    "LARGEINT",
    "LAST_VALUE",
    "LATERAL",
    "LEAD",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOAD",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "MAXVALUE",
    "MINUS",
    "MOD",
    "NOT",
    "NTILE",
    "NULL",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OUTFILE",
    "OVER",
    "PARTITION",
    "PERCENTILE",
    "PRIMARY",
    "PROCEDURE",
    "RANGE",
    "RANK",
    "READ",
    "REGEXP",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "REVOKE",
    "RIGHT",
    "RLIKE",
    "ROW",
    "ROWS",
    "ROW_NUMBER",
    "SCHEMA",
    "SCHEMAS",
    "SELECT",
    "SET",
    "SET_VAR",
    "SHOW",
    "SMALLINT",
    "SYSTEM",
    "TABLE",
    "TERMINATED",
    "TEXT",
    "THEN",
    "TINYINT",
    "TO",
    "TRUE",
    "UNION",
    "UNIQUE",
    "UNSIGNED",
    "UPDATE",
    "USE",
    "USING",
    "VALUES",
    "VARCHAR",
    "WHEN",
    "WHERE",
    "WITH",
];

/// True when `word` (any case) is a StarRocks reserved keyword.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED
        .binary_search_by(|probe| {
            // Compare `probe` with the uppercase of `word` without allocating.
            probe
                .bytes()
                .cmp(word.bytes().map(|b| b.to_ascii_uppercase()))
        })
        .is_ok()
}

/// True when `ident` can be written without backquotes and read back as the same identifier.
pub(crate) fn is_plain_identifier(ident: &str) -> bool {
    let mut chars = ident.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !is_reserved(ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_list_is_sorted_so_binary_search_works() {
        assert!(RESERVED.windows(2).all(|w| matches!(w, [a, b] if a < b)));
    }

    #[test]
    fn reserved_lookup_ignores_case() {
        assert!(is_reserved("select"));
        assert!(is_reserved("Partition"));
        assert!(!is_reserved("snapshot"));
        assert!(!is_reserved("repository"));
    }

    #[test]
    fn plain_identifiers() {
        assert!(is_plain_identifier("t1"));
        assert!(is_plain_identifier("_x"));
        assert!(!is_plain_identifier("1t"));
        assert!(!is_plain_identifier("table"));
        assert!(!is_plain_identifier("a-b"));
        assert!(!is_plain_identifier("été"));
        assert!(!is_plain_identifier(""));
    }
}
