//! The walk of a snapshot's trees, page by page, for a `data.mdb` shorter than its meta says.

use std::{fs::File, io};

use super::{
    DB_ROOT, Damage, F_BIGDATA, F_SUBDATA, Meta, NO_PAGE, NODE_HEADER, P_BRANCH, P_LEAF, P_LEAF2,
    P_OVERFLOW, PAGE_HEADER, read_full, u16_at, u32_at, u64_at,
};

/// Every page a snapshot reaches, read one by one: only a file shorter than its meta says is
/// walked, which LMDB leaves rarely and briefly.
pub(super) struct Walk<'f> {
    pub(super) file: &'f File,
    pub(super) page_size: u64,
    /// Whole pages in the file.
    pub(super) pages: u64,
    pub(super) size: u64,
    pub(super) visited: u64,
}

impl Walk<'_> {
    pub(super) fn run(&mut self, meta: &Meta) -> io::Result<Option<Damage>> {
        let page_size = usize::try_from(self.page_size).unwrap_or(usize::MAX);
        let mut buf = vec![0; page_size];
        let mut todo: Vec<u64> = [meta.free_root, meta.main_root]
            .into_iter()
            .filter(|&root| root != NO_PAGE)
            .collect();
        while let Some(page) = todo.pop() {
            if let Some(found) = self.visit(page, &mut buf, &mut todo)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Reads `page`, a page of a tree, and adds the pages it names to `todo`.
    fn visit(
        &mut self,
        page: u64,
        buf: &mut [u8],
        todo: &mut Vec<u64>,
    ) -> io::Result<Option<Damage>> {
        let bad = Some(Damage::Page { page });
        // No tree holds more pages than the file: more visits mean a cycle.
        self.visited += 1;
        if self.visited > self.pages || page < 2 {
            return Ok(bad);
        }
        if page >= self.pages {
            return Ok(Some(self.truncated(page)));
        }
        if read_full(self.file, page * self.page_size, buf)? < buf.len() {
            return Ok(Some(self.truncated(page)));
        }
        let Some((number, flags, lower)) =
            (|| Some((u64_at(buf, 0)?, u16_at(buf, 10)?, u16_at(buf, 12)?)))()
        else {
            return Ok(bad);
        };
        if number != page {
            return Ok(bad);
        }
        if flags & P_LEAF2 != 0 {
            // Fixed-size duplicates, side by side: no page named.
            return Ok(None);
        }
        if flags & (P_BRANCH | P_LEAF) == 0 {
            return Ok(bad);
        }
        let keys = usize::from(lower).saturating_sub(PAGE_HEADER) / 2;
        for i in 0..keys {
            let Some(found) = self.node(page, flags, buf, i, todo)? else {
                return Ok(bad);
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The `i`-th node of `buf`: `None` if it cannot be read, `Some(damage)` for what it names.
    fn node(
        &mut self,
        page: u64,
        flags: u16,
        buf: &[u8],
        i: usize,
        todo: &mut Vec<u64>,
    ) -> io::Result<Option<Option<Damage>>> {
        let Some(at) = u16_at(buf, PAGE_HEADER + 2 * i).map(usize::from) else {
            return Ok(None);
        };
        let (Some(lo), Some(hi), Some(node_flags), Some(key_size)) = (
            u16_at(buf, at),
            u16_at(buf, at + 2),
            u16_at(buf, at + 4),
            u16_at(buf, at + 6),
        ) else {
            return Ok(None);
        };
        if flags & P_BRANCH != 0 {
            // NODEPGNO: the child's number in `mn_lo`, `mn_hi` and `mn_flags`.
            todo.push(u64::from(lo) | (u64::from(hi) << 16) | (u64::from(node_flags) << 32));
            return Ok(Some(None));
        }
        let data = at + NODE_HEADER + usize::from(key_size);
        if node_flags & F_SUBDATA != 0 {
            let Some(root) = u64_at(buf, data + DB_ROOT) else {
                return Ok(None);
            };
            if root != NO_PAGE {
                todo.push(root);
            }
        } else if node_flags & F_BIGDATA != 0 {
            let Some(first) = u64_at(buf, data) else {
                return Ok(None);
            };
            return self.overflow(page, first).map(Some);
        }
        Ok(Some(None))
    }

    /// The overflow pages from `first` that a leaf node of `page` names.
    fn overflow(&mut self, page: u64, first: u64) -> io::Result<Option<Damage>> {
        if first < 2 {
            return Ok(Some(Damage::Page { page }));
        }
        if first >= self.pages {
            return Ok(Some(self.truncated(first)));
        }
        let mut head = [0; PAGE_HEADER];
        if read_full(self.file, first * self.page_size, &mut head)? < head.len() {
            return Ok(Some(self.truncated(first)));
        }
        let (Some(number), Some(flags), Some(count)) =
            (u64_at(&head, 0), u16_at(&head, 10), u32_at(&head, 12))
        else {
            return Ok(Some(Damage::Page { page: first }));
        };
        if number != first || flags & P_OVERFLOW == 0 || count == 0 {
            return Ok(Some(Damage::Page { page: first }));
        }
        let last = first.saturating_add(u64::from(count) - 1);
        Ok((last >= self.pages).then(|| self.truncated(last)))
    }

    fn truncated(&self, page: u64) -> Damage {
        Damage::Truncated {
            size: self.size,
            page,
        }
    }
}
