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
//! Without the default `exec` feature only [`parser`] and [`ast`] are built (no DataFusion, no
//! engine): that is how the fuzz crate uses it.
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
#[cfg(feature = "exec")]
pub mod backup_stmt;
#[cfg(feature = "exec")]
pub mod ddl;
#[cfg(feature = "exec")]
pub mod error;
#[cfg(feature = "exec")]
pub mod format;
#[cfg(feature = "exec")]
pub mod group_by;
#[cfg(feature = "exec")]
pub mod insert;
pub mod parser;
#[cfg(feature = "exec")]
pub mod provider;
#[cfg(feature = "exec")]
pub mod query;
#[cfg(feature = "exec")]
pub mod result;
#[cfg(feature = "exec")]
pub mod session;
#[cfg(feature = "exec")]
pub mod users;

#[cfg(feature = "exec")]
pub use error::SqlError;
pub use parser::{ParseError, parse, parse_one};
#[cfg(feature = "exec")]
pub use result::QueryResult;
#[cfg(feature = "exec")]
pub use session::Session;
