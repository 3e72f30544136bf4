//! StarRocks-compatible SQL for shale.
//!
//! - [`parser`]: turns a script of StarRocks-dialect statements into [`ast::Statement`]s
//!   ([`parser::parse`], [`parser::parse_one`]); queries are kept as text for DataFusion.
//! - [`ast`]: the statements, printable back as canonical SQL.
//!
//! ```
//! use shale_sql::ast::Statement;
//!
//! let statement = shale_sql::parser::parse_one(
//!     "BACKUP SNAPSHOT sales.snap1 TO repo ON (orders PARTITION (p1))",
//! )
//! .unwrap();
//! assert!(matches!(statement, Statement::Backup(_)));
//! assert_eq!(
//!     statement.to_string(),
//!     "BACKUP SNAPSHOT sales.snap1 TO repo ON (orders PARTITION (p1))"
//! );
//! ```

pub mod ast;
pub mod parser;

pub use parser::{ParseError, parse, parse_one};
