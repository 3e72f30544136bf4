//! Positions in the source text.
//!
//! sqlparser's tokenizer reports 1-based lines and columns, where a column counts characters
//! (not bytes) and only `\n` starts a new line. [`SourceMap`] turns such a position back into
//! a byte offset so statements can be sliced out of the original text. Offsets it returns are
//! always on a `char` boundary and never past the end of the text, whatever position it is
//! given: positions from MySQL `/*! ... */` hint comments are approximate, and bad input must
//! not panic.

/// A 1-based line and column, as reported by the tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column in characters, from 1.
    pub column: u64,
}

/// Maps tokenizer positions to byte offsets in one source text.
#[derive(Debug)]
pub(crate) struct SourceMap<'a> {
    source: &'a str,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    /// Indexes the line starts of `source`.
    pub(crate) fn new(source: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|&(_, byte)| byte == b'\n')
                .map(|(offset, _)| offset + 1),
        );
        SourceMap {
            source,
            line_starts,
        }
    }

    /// The position just after the last character, where the tokenizer would put end of input.
    pub(crate) fn end(&self) -> Pos {
        let last_start = self.line_starts.last().copied().unwrap_or(0);
        let last_line = self.source.get(last_start..).unwrap_or("");
        Pos {
            line: u64::try_from(self.line_starts.len()).unwrap_or(u64::MAX),
            column: u64::try_from(last_line.chars().count())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        }
    }

    /// Byte offset of `pos`, clamped to the text.
    pub(crate) fn offset(&self, pos: Pos) -> usize {
        let Some(line_index) = usize::try_from(pos.line)
            .ok()
            .and_then(|line| line.checked_sub(1))
        else {
            // Line 0 means "no position"; treat it as the start.
            return 0;
        };
        let Some(&line_start) = self.line_starts.get(line_index) else {
            return self.source.len();
        };
        let rest = self.source.get(line_start..).unwrap_or("");
        let chars_before = usize::try_from(pos.column.saturating_sub(1)).unwrap_or(usize::MAX);
        match rest.char_indices().nth(chars_before) {
            Some((offset, _)) => line_start + offset,
            None => self.source.len(),
        }
    }

    /// The text from `start` (inclusive) to `end` (exclusive); empty if they are out of order.
    pub(crate) fn slice(&self, start: Pos, end: Pos) -> &'a str {
        let from = self.offset(start);
        let to = self.offset(end).max(from);
        self.source.get(from..to).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u64, column: u64) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let map = SourceMap::new("é€x\nab");
        assert_eq!(map.offset(pos(1, 1)), 0);
        assert_eq!(map.offset(pos(1, 2)), 2);
        assert_eq!(map.offset(pos(1, 3)), 5);
        assert_eq!(map.offset(pos(1, 4)), 6);
        assert_eq!(map.offset(pos(2, 1)), 7);
        assert_eq!(map.offset(pos(2, 3)), 9);
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let map = SourceMap::new("ab\ncd");
        assert_eq!(map.offset(pos(0, 0)), 0);
        assert_eq!(map.offset(pos(9, 1)), 5);
        assert_eq!(map.offset(pos(2, 99)), 5);
        assert_eq!(map.offset(pos(u64::MAX, u64::MAX)), 5);
        assert_eq!(map.slice(pos(2, 2), pos(1, 1)), "");
    }

    #[test]
    fn end_is_after_last_character() {
        assert_eq!(SourceMap::new("").end(), pos(1, 1));
        assert_eq!(SourceMap::new("ab\nü").end(), pos(2, 2));
        assert_eq!(SourceMap::new("ab\n").end(), pos(2, 1));
    }

    #[test]
    fn slices_span_lines() {
        let map = SourceMap::new("SELECT 'ü',\n  2 -- x\n;");
        assert_eq!(map.slice(pos(1, 1), pos(2, 4)), "SELECT 'ü',\n  2");
    }
}
