//! Reading logits: the classes an image's logits rank highest.

/// The indices of the `k` largest logits, best first, ties in index order. NaN ranks above
/// every number (`f32::total_cmp`), so a NaN logit is reported instead of silently skipped.
pub fn top_classes(logits: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}
