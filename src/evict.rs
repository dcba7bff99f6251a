//! Bounding maps that callers outside the operator's control fill (one entry per name an
//! HTTP client or a hostile DNS answer picks): past the limit, entries go, oldest first,
//! instead of the map growing with every new name.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Makes room for one more entry in `map`, which must hold at most `limit`: first the
/// entries `stale` says are stale go, then, if it is still full, the oldest quarter (by
/// the time `at` gives), so that the scan is paid for by the inserts that follow.
pub fn make_room<K: Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    limit: usize,
    at: impl Fn(&V) -> Instant,
    stale: impl Fn(&V) -> bool,
) {
    if map.len() < limit {
        return;
    }
    map.retain(|_, v| !stale(v));
    if map.len() < limit {
        return;
    }
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, v)| (at(v), k.clone())).collect();
    ages.sort_unstable_by_key(|(t, _)| *t);
    let drop = (limit / 4).max(map.len() + 1 - limit);
    for (_, key) in ages.into_iter().take(drop) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn full_map_of_fresh_entries_loses_its_oldest() {
        let base = Instant::now();
        let mut map: HashMap<u32, Instant> = (0..8)
            .map(|i| (i, base + Duration::from_secs(u64::from(i))))
            .collect();
        make_room(&mut map, 8, |v| *v, |_| false);
        assert_eq!(map.len(), 6);
        assert!(!map.contains_key(&0) && !map.contains_key(&1));
        make_room(&mut map, 8, |v| *v, |_| false);
        assert_eq!(map.len(), 6, "room left: nothing dropped");
        make_room(&mut map, 6, |v| *v, |v| *v < base + Duration::from_secs(4));
        assert_eq!(map.len(), 4, "stale ones first");
    }
}
