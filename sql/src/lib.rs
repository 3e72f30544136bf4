//! StarRocks-compatible SQL for shale.
//!
//! Which API you want:
//! - [`Session`]: open one on an [`shale_engine::Engine`] as a user and
//!   [`Session::execute`] scripts; each statement gives a [`QueryResult`] of Arrow batches.
//! - [`parser`]: turns a script of StarRocks-dialect statements into [`ast::Statement`]s
//!   ([`parser::parse`], [`parser::parse_one`]); queries are kept as text for DataFusion.
//! - [`ast`]: the statements, printable back as canonical SQL.
//! - [`format`]: results as a text table, CSV or JSON lines, as the `shale` shell prints them.
//!
//! Layers: `parser` → `session` (dispatch) → `ddl`, `insert`, `users`, `backup_stmt` on the
//! engine, and `query` + `provider` for SELECT on DataFusion.
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
pub mod backup_stmt;
pub mod ddl;
pub mod error;
pub mod format;
pub mod insert;
pub mod parser;
pub mod provider;
pub mod query;
pub mod result;
pub mod session;
pub mod users;

pub use error::SqlError;
pub use parser::{ParseError, parse, parse_one};
pub use result::QueryResult;
pub use session::Session;
