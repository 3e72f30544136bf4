//! Column names as StarRocks treats them: case-insensitive, kept as declared.
//!
//! DataFusion folds unquoted identifiers to lower case and then matches names exactly, so a
//! column declared `UserId` could only be reached as `` `UserId` ``. Before planning, every
//! identifier that names a column of a table the query reads (case-insensitively, quoted or
//! not) is replaced by the column's declared spelling, quoted. That includes the aliases a query
//! defines (select items, CTE and derived-table column lists) so that the fold is one function
//! of the lower-cased name, applied everywhere: names that match case-insensitively still match
//! after it, whatever scope they resolve in.
//!
//! Result headers then follow StarRocks (like MySQL): a select item that is a column reference
//! is headed as it is written in the query, an alias as written, another expression by its SQL
//! text, and `*` by the declared names.
//! [`headers`] records them before the fold and [`rename`] applies them to the result.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinConstraint, ObjectNamePart, Query, Select, SelectItem, SetExpr, Statement,
    TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};

use crate::error::Result;

/// Declared column names by their lower-case form.
type Spellings = HashMap<String, String>;

/// The columns a query may name.
#[derive(Debug, Default)]
pub struct Columns {
    /// Of every table read. A name two tables spell differently keeps the first spelling.
    declared: Spellings,
    /// Of each table, by the name or alias that qualifies its columns (lower case).
    by_qualifier: HashMap<String, Spellings>,
}

impl Columns {
    /// The columns of every table `statement` reads (CTE names excluded), as the context
    /// resolves them.
    pub async fn of(ctx: &SessionContext, statement: &DfStatement) -> Result<Columns> {
        let mut columns = Columns::default();
        let references = ctx.state().resolve_table_references(statement)?;
        for reference in &references {
            // A table that does not resolve is left to the planner to report.
            let Ok(provider) = ctx.table_provider(reference.clone()).await else {
                continue;
            };
            for field in provider.schema().fields() {
                columns
                    .declared
                    .entry(field.name().to_lowercase())
                    .or_insert_with(|| field.name().clone());
            }
        }
        for (reference, qualifier) in qualified_tables(statement) {
            if !references.contains(&reference) {
                continue;
            }
            let Ok(provider) = ctx.table_provider(reference).await else {
                continue;
            };
            let spellings = provider
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().to_lowercase(), f.name().clone()))
                .collect();
            columns.by_qualifier.insert(qualifier, spellings);
        }
        Ok(columns)
    }

    /// The declared spelling of an identifier naming a column (of the table `qualifier`
    /// names, when it names one), quoted so that the planner takes it as is. Backquoted names
    /// fold too: StarRocks, like MySQL, matches column names case-insensitively however they
    /// are written.
    fn fold(&self, ident: &mut Ident, qualifier: Option<&Ident>) {
        let spellings = qualifier
            .and_then(|q| self.by_qualifier.get(&q.value.to_lowercase()))
            .unwrap_or(&self.declared);
        if let Some(declared) = spellings.get(&ident.value.to_lowercase()) {
            ident.value = declared.clone();
            ident.quote_style = Some('`');
        }
    }
}

/// Each table of the statement's FROM clauses with the name that qualifies its columns (its
/// alias, or else its own name), lower case.
fn qualified_tables(statement: &DfStatement) -> Vec<(TableReference, String)> {
    struct Tables(Vec<(TableReference, String)>);
    impl Visitor for Tables {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = factor {
                // As DataFusion reads a name: unquoted parts in lower case.
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident())
                    .map(|i| match i.quote_style {
                        Some(_) => i.value.clone(),
                        None => i.value.to_lowercase(),
                    })
                    .collect();
                let reference = match parts.as_slice() {
                    [t] => Some(TableReference::bare(t.as_str())),
                    [s, t] => Some(TableReference::partial(s.as_str(), t.as_str())),
                    [c, s, t] => Some(TableReference::full(c.as_str(), s.as_str(), t.as_str())),
                    _ => None,
                };
                let qualifier = match alias {
                    Some(a) => Some(a.name.value.to_lowercase()),
                    None => parts.last().map(|t| t.to_lowercase()),
                };
                if let (Some(r), Some(q)) = (reference, qualifier) {
                    self.0.push((r, q));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut tables = Tables(Vec::new());
    match statement {
        DfStatement::Statement(s) => {
            let _ = s.visit(&mut tables);
        }
        DfStatement::Explain(explain) => return qualified_tables(&explain.statement),
        _ => {}
    }
    tables.0
}

/// Folds the column names of a statement (see the module docs).
pub fn fold(statement: &mut DfStatement, columns: &Columns) {
    let mut folder = Folder { columns };
    match statement {
        DfStatement::Statement(s) => {
            let _ = s.visit(&mut folder);
        }
        DfStatement::Explain(explain) => fold(&mut explain.statement, columns),
        // DDL and COPY are refused before planning.
        _ => {}
    }
}

struct Folder<'a> {
    columns: &'a Columns,
}

impl VisitorMut for Folder<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        for cte in query.with.iter_mut().flat_map(|w| w.cte_tables.iter_mut()) {
            for column in &mut cte.alias.columns {
                self.columns.fold(&mut column.name, None);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in &mut select.projection {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => self.columns.fold(alias, None),
                SelectItem::ExprWithAliases { aliases, .. } => {
                    aliases.iter_mut().for_each(|a| self.columns.fold(a, None));
                }
                _ => {}
            }
        }
        for join in select.from.iter_mut().flat_map(|t| t.joins.iter_mut()) {
            if let Some(JoinConstraint::Using(names)) = join_constraint(&mut join.join_operator) {
                for part in names.iter_mut().flat_map(|n| n.0.iter_mut()) {
                    if let ObjectNamePart::Identifier(ident) = part {
                        self.columns.fold(ident, None);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived {
            alias: Some(alias), ..
        } = factor
        {
            for column in &mut alias.columns {
                self.columns.fold(&mut column.name, None);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) => self.columns.fold(ident, None),
            // The last part is the column; the one before names its table.
            Expr::CompoundIdentifier(parts) => {
                if let [.., qualifier, column] = parts.as_mut_slice() {
                    self.columns.fold(column, Some(qualifier));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn join_constraint(
    operator: &mut datafusion::sql::sqlparser::ast::JoinOperator,
) -> Option<&mut JoinConstraint> {
    use datafusion::sql::sqlparser::ast::JoinOperator as J;
    match operator {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c)
        | J::AsOf { constraint: c, .. } => Some(c),
        _ => None,
    }
}

/// How one select item of the outermost query is headed.
#[derive(Clone, Debug, PartialEq)]
pub enum Header {
    /// As written: a column reference's name, an alias, or an expression's SQL text.
    Named(String),
    /// `*` or `t.*`: one column per field, named as declared.
    Wildcard,
    /// Named by DataFusion (an item with several aliases).
    Planned,
}

/// The headers of the outermost query's select items, as written (before [`fold`]); empty
/// when the statement is not a plain query.
pub fn headers(statement: &DfStatement) -> Vec<Header> {
    let DfStatement::Statement(s) = statement else {
        return Vec::new();
    };
    let Statement::Query(query) = s.as_ref() else {
        return Vec::new();
    };
    let mut body = query.body.as_ref();
    // A set operation takes its names from its first query.
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => body = &q.body,
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return Vec::new();
    };
    select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Header::Named(alias.value.clone()),
            SelectItem::ExprWithAliases { .. } => Header::Planned,
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Header::Named(ident.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts
                .last()
                .map_or(Header::Planned, |p| Header::Named(p.value.clone())),
            // StarRocks heads an expression with its SQL text (`sum(amount)`), where DataFusion
            // would write its plan's name (`sum(events.amount)`).
            SelectItem::UnnamedExpr(expr) => Header::Named(expr.to_string()),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => Header::Wildcard,
        })
        .collect()
}

/// The result's schema with the named headers applied. Items before the first wildcard are
/// matched to fields from the start, items after the last one from the end.
pub fn rename(schema: &SchemaRef, headers: &[Header]) -> SchemaRef {
    let field_count = schema.fields().len();
    let first_wildcard = headers.iter().position(|h| *h == Header::Wildcard);
    let last_wildcard = headers.iter().rposition(|h| *h == Header::Wildcard);
    if first_wildcard.is_none() && headers.len() != field_count {
        return schema.clone();
    }
    let mut names: Vec<Option<&str>> = vec![None; field_count];
    for (index, header) in headers.iter().enumerate() {
        let Header::Named(name) = header else {
            continue;
        };
        let field_index = match (first_wildcard, last_wildcard) {
            (Some(first), _) if index < first => Some(index),
            (_, Some(last)) if index > last => field_count.checked_sub(headers.len() - index),
            (None, None) => Some(index),
            _ => None,
        };
        if let Some(slot) = field_index.and_then(|i| names.get_mut(i)) {
            *slot = Some(name.as_str());
        }
    }
    if names.iter().all(Option::is_none) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&names)
        .map(|(field, name)| match name {
            Some(n) => field.as_ref().clone().with_name(*n),
            None => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batches` under the renamed `schema` (same columns, new names).
pub fn rebind(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| {
            let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
            Ok(RecordBatch::try_new_with_options(
                schema.clone(),
                b.columns().to_vec(),
                &options,
            )?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::DataType;

    fn schema(names: &[&str]) -> SchemaRef {
        Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(*n, DataType::Int32, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn names(schema: &SchemaRef) -> Vec<String> {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    #[test]
    fn headers_map_around_a_wildcard() {
        let headers = vec![
            Header::Named("A".into()),
            Header::Wildcard,
            Header::Planned,
            Header::Named("Z".into()),
        ];
        let renamed = rename(&schema(&["a", "x", "y", "count(*)", "z"]), &headers);
        assert_eq!(names(&renamed), ["A", "x", "y", "count(*)", "Z"]);
    }

    #[test]
    fn headers_that_do_not_line_up_leave_the_schema_alone() {
        let headers = vec![Header::Named("A".into())];
        let renamed = rename(&schema(&["a", "b"]), &headers);
        assert_eq!(names(&renamed), ["a", "b"]);
    }
}
