//! Drawing a DAG as `git log --graph` draws commits, for `log --graph` and
//! `history --graph`: one row per node, newest first; `*` for the node, `|`
//! for a lane running past it, `/` where a lane joins the one to its left
//! (a fork point, read newest first), `\` where a merge opens a lane for
//! another parent, `_` where a joining lane passes under others.
//!
//! The layout is the lane assignment of git's `graph.c`, simplified. A lane
//! is a column waiting for a node. A node takes the leftmost lane waiting
//! for it (or, when none does, a new lane in the first free column); the
//! other lanes waiting for it join it first, each on a row of its own, into
//! the nearest waiting lane on its left. Its first parent inherits its lane;
//! each other parent gets a new lane right of it, in the free column there
//! or by shifting the lanes beyond one column right. Two lanes waiting for
//! the same parent are joined only when that parent is drawn, so no edge is
//! ever hidden in another. A node without parents ends its lane, and its
//! column is free for a later new lane, though not for the very next node's:
//! that node drawn right under a root would read as its parent. An octopus
//! merge opens its extra lanes one row each, each from the lane opened
//! before it.
//!
//! Callers give the nodes newest first in a topological order (every node
//! before its parents), each with the parents that will be drawn: a parent
//! never drawn keeps its lane open to the bottom. Placing a node costs time
//! in proportion to the number of lanes open beside it, never to the number
//! of nodes drawn before it. The layout knows nothing of what a node is.

use super::output::Paint;

/// One character of a row, and the lane it draws (for its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    glyph: char,
    /// The colour of the lane; `None` for the node and for blanks.
    lane: Option<usize>,
}

const BLANK: Cell = Cell {
    glyph: ' ',
    lane: None,
};

impl Cell {
    fn lane(glyph: char, lane: &Lane<impl Sized>) -> Cell {
        Cell {
            glyph,
            lane: Some(lane.colour),
        }
    }
}

/// One row of the graph: lanes at even positions, the gaps between them at
/// odd ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row(Vec<Cell>);

impl Row {
    /// Its width without trailing blanks.
    fn width(&self) -> usize {
        self.0
            .iter()
            .rposition(|cell| *cell != BLANK)
            .map_or(0, |last| last + 1)
    }

    /// The row as text `width` characters wide (cut or padded with blanks),
    /// each lane's characters painted in the lane's colour.
    fn render(&self, width: usize, paint: &dyn Fn(Paint, &str) -> String) -> String {
        let mut text = String::with_capacity(width);
        for cell in self.0.iter().take(width) {
            match cell.lane {
                Some(colour) => text.push_str(&paint(Paint::Lane(colour), &cell.glyph.to_string())),
                None => text.push(cell.glyph),
            }
        }
        let drawn = self.0.len().min(width);
        text.extend(std::iter::repeat_n(' ', width - drawn));
        text
    }
}

/// The rows one node adds to the graph.
#[derive(Debug)]
pub struct Drawn {
    /// Rows before the node's: other lanes waiting for it joining its lane.
    before: Vec<Row>,
    /// The node's own row, `*` in its lane.
    node: Row,
    /// Rows after it: a merge opening lanes for its other parents.
    after: Vec<Row>,
    /// The lanes as they run on below it, for more lines of its text.
    padding: Row,
}

impl Drawn {
    /// How many rows come before the node's own: the first lines of
    /// [`Drawn::lines`], for a renderer that puts the node's row apart.
    pub fn joins(&self) -> usize {
        self.before.len()
    }

    /// The lines of the node: the joining rows, then its row with the first
    /// line of `text` beside it, the rows after it with the next lines, and
    /// padding rows for the lines left. All rows beside text are as wide as
    /// the widest of them, so the text lines up; a row without text has no
    /// trailing blanks.
    pub fn lines(&self, text: &[String], paint: &dyn Fn(Paint, &str) -> String) -> Vec<String> {
        let mut lines: Vec<String> = self
            .before
            .iter()
            .map(|row| row.render(row.width(), paint))
            .collect();
        let rows: Vec<&Row> = std::iter::once(&self.node).chain(&self.after).collect();
        let width = rows
            .iter()
            .chain([&&self.padding])
            .map(|row| row.width())
            .max()
            .unwrap_or(0);
        for line in 0..rows.len().max(text.len()) {
            let row = rows.get(line).copied().unwrap_or(&self.padding);
            lines.push(match text.get(line).filter(|text| !text.is_empty()) {
                Some(text) => format!("{} {text}", row.render(width, paint)),
                None => row.render(row.width(), paint),
            });
        }
        lines
    }
}

/// A lane: the node it waits for, and its colour.
#[derive(Clone, Debug)]
struct Lane<K> {
    waiting: K,
    colour: usize,
}

/// The lanes of a graph being drawn, node by node; `K` identifies a node.
#[derive(Debug)]
pub struct Layout<K> {
    /// Per column, the lane in it; `None` for a free column.
    columns: Vec<Option<Lane<K>>>,
    /// Lanes opened so far, which numbers their colours.
    opened: usize,
    /// The column the last node freed: a root's, which the next node must
    /// not take.
    freed: Option<usize>,
}

impl<K> Default for Layout<K> {
    fn default() -> Self {
        Layout {
            columns: Vec::new(),
            opened: 0,
            freed: None,
        }
    }
}

impl<K: PartialEq + Clone> Layout<K> {
    /// Places `node`, the next one newest first, whose drawn parents are
    /// `parents` (first parent first; repeats are ignored), and returns the
    /// rows it adds.
    pub fn place(&mut self, node: &K, parents: &[K]) -> Drawn {
        let waiting: Vec<usize> = (0..self.columns.len())
            .filter(|&column| self.waits_for(column, node))
            .collect();
        let column = match waiting.first() {
            Some(&first) => first,
            None => self.new_lane(node.clone()),
        };
        // Rightmost first, so the columns still to join do not move.
        let before = (1..waiting.len())
            .rev()
            .map(|k| self.join(waiting[k - 1], waiting[k]))
            .collect();
        let node_row = self.row(Some(column));
        let mut unique: Vec<&K> = Vec::with_capacity(parents.len());
        for parent in parents {
            if !unique.contains(&parent) {
                unique.push(parent);
            }
        }
        let mut after = Vec::new();
        self.freed = None;
        match unique.split_first() {
            None => {
                self.columns[column] = None;
                self.freed = Some(column);
            }
            Some((first, others)) => {
                if let Some(lane) = &mut self.columns[column] {
                    lane.waiting = (*first).clone();
                }
                for (k, parent) in others.iter().enumerate() {
                    after.push(self.open(column + k, (*parent).clone()));
                }
            }
        }
        while self.columns.last().is_some_and(Option::is_none) {
            self.columns.pop();
        }
        Drawn {
            before,
            node: node_row,
            after,
            padding: self.row(None),
        }
    }

    fn waits_for(&self, column: usize, node: &K) -> bool {
        self.columns[column]
            .as_ref()
            .is_some_and(|lane| lane.waiting == *node)
    }

    fn lane(&mut self, waiting: K) -> Lane<K> {
        self.opened += 1;
        Lane {
            waiting,
            colour: self.opened - 1,
        }
    }

    /// A new lane waiting for `node` in the first free column but the one
    /// the last node freed; its column.
    fn new_lane(&mut self, node: K) -> usize {
        let lane = Some(self.lane(node));
        let column = (0..)
            .find(|&column| {
                Some(column) != self.freed && self.columns.get(column).is_none_or(Option::is_none)
            })
            .expect("holds: the columns are finite");
        if column >= self.columns.len() {
            self.columns.resize_with(column + 1, || None);
        }
        self.columns[column] = lane;
        column
    }

    /// The lanes as one row: `*` in `node`'s column, `|` for the others.
    fn row(&self, node: Option<usize>) -> Row {
        let mut cells = Vec::with_capacity(self.columns.len() * 2);
        for (column, lane) in self.columns.iter().enumerate() {
            if column > 0 {
                cells.push(BLANK);
            }
            cells.push(match lane {
                _ if Some(column) == node => Cell {
                    glyph: '*',
                    lane: None,
                },
                Some(lane) => Cell::lane('|', lane),
                None => BLANK,
            });
        }
        Row(cells)
    }

    /// The row on which the lane in column `joining` runs left into the
    /// one in column `into` (under the lanes between, with `_`); the lanes
    /// right of it move one column left, and the lane is gone.
    fn join(&mut self, into: usize, joining: usize) -> Row {
        let moving = self.columns[joining]
            .clone()
            .expect("BUG: a joining column holds a lane");
        let mut cells = vec![BLANK; self.columns.len() * 2];
        for (column, lane) in self.columns.iter().enumerate() {
            let lane = lane.as_ref();
            if column <= into {
                cells[2 * column] = lane.map_or(BLANK, |lane| Cell::lane('|', lane));
            } else if column < joining {
                let under = Cell::lane('_', &moving);
                cells[2 * column - 1] = under;
                cells[2 * column] = lane.map_or(under, |lane| Cell::lane('|', lane));
            } else if column == joining {
                cells[2 * column - 1] = Cell::lane('/', &moving);
            } else if let Some(lane) = lane {
                cells[2 * column - 1] = Cell::lane('/', lane);
            }
        }
        self.columns.remove(joining);
        Row(cells)
    }

    /// The row on which a new lane for `parent` leaves the lane in column
    /// `from` for the column right of it: into that column when it is
    /// free, else moving every lane from there one column right.
    fn open(&mut self, from: usize, parent: K) -> Row {
        let new = self.lane(parent);
        let shift = !matches!(self.columns.get(from + 1), Some(None));
        let mut cells = vec![BLANK; self.columns.len() * 2];
        for (column, lane) in self.columns.iter().enumerate() {
            let Some(lane) = lane else { continue };
            if shift && column > from {
                cells[2 * column + 1] = Cell::lane('\\', lane);
            } else {
                cells[2 * column] = Cell::lane('|', lane);
            }
        }
        cells[2 * from + 1] = Cell::lane('\\', &new);
        if shift {
            self.columns.insert(from + 1, Some(new));
        } else {
            self.columns[from + 1] = Some(new);
        }
        Row(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(_: Paint, text: &str) -> String {
        text.to_owned()
    }

    /// The lines of nodes given newest first with their parents, each
    /// node's id as its one line of text.
    fn draw(nodes: &[(&str, &[&str])]) -> Vec<String> {
        let mut layout = Layout::default();
        let mut lines = Vec::new();
        for (id, parents) in nodes {
            let parents: Vec<&str> = parents.to_vec();
            let drawn = layout.place(id, &parents);
            lines.extend(drawn.lines(&[(*id).to_owned()], &plain));
        }
        lines
    }

    #[test]
    fn a_line_is_one_lane() {
        assert_eq!(
            draw(&[("c", &["b"]), ("b", &["a"]), ("a", &[])]),
            ["* c", "* b", "* a"]
        );
    }

    #[test]
    fn two_branches_take_two_lanes_and_join_at_the_fork() {
        let lines = draw(&[("y1", &["a"]), ("x2", &["x1"]), ("x1", &["a"]), ("a", &[])]);
        assert_eq!(lines, ["* y1", "| * x2", "| * x1", "|/", "* a"]);
    }

    /// The merge's row is as wide as the lanes under it, so its text lines
    /// up with theirs; the lane it opens joins back at the fork.
    #[test]
    fn a_merge_opens_a_lane_that_joins_at_the_fork() {
        let lines = draw(&[
            ("m", &["c1", "c2"]),
            ("c2", &["b"]),
            ("c1", &["b"]),
            ("b", &[]),
        ]);
        assert_eq!(lines, ["*   m", "|\\", "| * c2", "* | c1", "|/", "* b"]);
    }

    #[test]
    fn three_branches_and_a_merge() {
        let lines = draw(&[
            ("m", &["c1", "c2"]),
            ("c2", &["b"]),
            ("z", &["b"]),
            ("c1", &["b"]),
            ("b", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "*   m", "|\\", "| * c2", "| | * z", "* | | c1", "| |/", "|/", "* b"
            ]
        );
    }

    #[test]
    fn a_merge_beside_another_lane_shifts_it_right() {
        let lines = draw(&[
            ("z", &["a"]),
            ("m", &["c1", "c2"]),
            ("c2", &["a"]),
            ("c1", &["a"]),
            ("a", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "* z", "| *   m", "| |\\", "| | * c2", "| * | c1", "| |/", "|/", "* a"
            ]
        );
    }

    /// A merge whose other parent another lane already waits for still
    /// draws its own edge to it: the two lanes join where the parent is.
    #[test]
    fn a_merge_into_a_waited_parent_draws_its_own_edge() {
        let lines = draw(&[("h", &["p"]), ("m", &["q", "p"]), ("q", &["p"]), ("p", &[])]);
        assert_eq!(
            lines,
            ["* h", "| *   m", "| |\\", "| * | q", "| |/", "|/", "* p"]
        );
    }

    /// A lane joining across another passes under it.
    #[test]
    fn a_joining_lane_crosses_the_lane_between() {
        let lines = draw(&[
            ("a", &["x"]),
            ("b", &["y"]),
            ("c", &["x"]),
            ("x", &[]),
            ("y", &[]),
        ]);
        assert_eq!(lines, ["* a", "| * b", "| | * c", "|_|/", "* | x", "  * y"]);
    }

    #[test]
    fn an_octopus_opens_one_lane_a_row() {
        let lines = draw(&[
            ("o", &["a", "b", "c"]),
            ("a", &["r"]),
            ("b", &["r"]),
            ("c", &["r"]),
            ("r", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "*     o", "|\\", "| |\\", "* | | a", "| * | b", "| | * c", "| |/", "|/", "* r"
            ]
        );
    }

    /// Two histories with a base each (Alembic branches with their own
    /// labels) run side by side and never join.
    #[test]
    fn separate_roots_keep_separate_lanes() {
        let lines = draw(&[("a2", &["a1"]), ("b2", &["b1"]), ("a1", &[]), ("b1", &[])]);
        assert_eq!(lines, ["* a2", "| * b2", "* | a1", "  * b1"]);
    }

    /// A new head never goes right under a root, where it would read as
    /// the root's parent; later it may take the root's column again.
    #[test]
    fn a_new_lane_skips_the_column_a_root_just_freed() {
        let lines = draw(&[
            ("x", &["r1"]),
            ("y", &["r2"]),
            ("r1", &[]),
            ("z", &["r2"]),
            ("r2", &[]),
            ("u", &[]),
            ("v", &[]),
        ]);
        assert_eq!(
            lines,
            [
                "* x", "| * y", "* | r1", "  | * z", "  |/", "  * r2", "* u", "  * v"
            ]
        );
    }

    /// More lines of text than rows: the lanes run on beside them, an
    /// empty line gets the lanes alone, and under a root the text keeps
    /// its indent.
    #[test]
    fn text_lines_continue_beside_the_lanes() {
        let mut layout = Layout::default();
        let text =
            |lines: &[&str]| -> Vec<String> { lines.iter().map(|l| (*l).to_owned()).collect() };
        let mut lines = Vec::new();
        let drawn = layout.place(&"m", &["a", "b"]);
        lines.extend(drawn.lines(&text(&["m", "merge", "", "body"]), &plain));
        let drawn = layout.place(&"b", &["a"]);
        lines.extend(drawn.lines(&text(&["b", "side"]), &plain));
        let drawn = layout.place(&"a", &[]);
        lines.extend(drawn.lines(&text(&["a", "root"]), &plain));
        assert_eq!(
            lines,
            [
                "*   m",
                "|\\  merge",
                "| |",
                "| | body",
                "| * b",
                "| | side",
                "|/",
                "* a",
                "  root"
            ]
        );
    }

    /// Each lane keeps its colour wherever it runs; the node is not
    /// painted.
    #[test]
    fn lanes_are_painted_by_lane() {
        let paint = |paint: Paint, text: &str| match paint {
            Paint::Lane(lane) => format!("{text}{lane}"),
            _ => panic!("only lanes are painted"),
        };
        let mut layout = Layout::default();
        let mut lines = Vec::new();
        for (id, parents) in [("y", &["a"][..]), ("x", &["a"]), ("a", &[])] {
            lines.extend(layout.place(&id, parents).lines(&[id.to_owned()], &paint));
        }
        assert_eq!(lines, ["* y", "|0 * x", "|0/1", "* a"]);
    }

    /// Ten thousand forks, each merged again: the graph stays two lanes
    /// wide, five lines a fork, however long it gets.
    #[test]
    fn a_long_history_keeps_its_width() {
        const FORKS: u32 = 10_000;
        let mut layout = Layout::default();
        let mut lines = Vec::new();
        // Fork i: merge 3i+2 of 3i+1 and 3i, both children of the merge
        // 3i-1 before it; the first fork grows from a root, 0.
        let previous = |fork: u32| if fork == 1 { 0 } else { 3 * fork - 1 };
        for fork in (1..=FORKS).rev() {
            let (merge, left, right) = (3 * fork + 2, 3 * fork + 1, 3 * fork);
            for (node, parents) in [
                (merge, vec![left, right]),
                (right, vec![previous(fork)]),
                (left, vec![previous(fork)]),
            ] {
                lines.extend(
                    layout
                        .place(&node, &parents)
                        .lines(&[node.to_string()], &plain),
                );
            }
        }
        lines.extend(layout.place(&0, &[]).lines(&["0".to_owned()], &plain));
        assert_eq!(lines.len(), 5 * FORKS as usize + 1);
        assert_eq!(
            lines[..6],
            [
                "*   30002",
                "|\\",
                "| * 30000",
                "* | 30001",
                "|/",
                "*   29999"
            ]
        );
        let widest = lines
            .iter()
            .map(|line| {
                line.split(|c: char| c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .trim_end()
                    .len()
            })
            .max();
        assert_eq!(widest, Some(3));
    }
}
