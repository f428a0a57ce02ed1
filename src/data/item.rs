//! What a data set is made of before any pixel is read: image ids, a target and the
//! quarter turns, so samplers can plan batches without touching the images.

/// An item: ids of its 1 or 2 images in the image list, its target (a class index; for
/// numbers and label sets its row in `Targets`), and the quarter turns applied to its
/// images (rotations used as extra classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub ids: [usize; 2],
    pub y: i64,
    pub turns: u8,
}
