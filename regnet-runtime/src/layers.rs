//! The network's layers as types, each carrying its shapes as const generics.
//!
//! Each layer states the feature-map type it consumes and produces ([`Layer::Input`],
//! [`Layer::Output`]) and checks its own arithmetic (strided sizes, groups dividing the
//! bottleneck width) in [`Layer::CHECK`]. The code `regnet!` generates chains its layers through
//! [`wired`] in a `const` item, so a network whose shapes do not line up does not compile.

use std::marker::PhantomData;

use crate::spec::strided;

/// The type of a batch of feature maps: `C` channels of `H`×`W` pixels; the batch size is the
/// only dimension left to run time.
pub struct Features<const C: usize, const H: usize, const W: usize>(PhantomData<[f32; 0]>);

/// The type of a batch of `N` logits per image.
pub struct Logits<const N: usize>(PhantomData<[f32; 0]>);

/// A layer with statically known input and output shapes.
pub trait Layer {
    /// The feature-map type this layer consumes ([`Features`]).
    type Input;
    /// The type this layer produces: [`Features`], or [`Logits`] for the head.
    type Output;
    /// Evaluating this fails the build if the layer's own shapes are inconsistent.
    const CHECK: ();
}

/// Compiles only if `B` consumes exactly what `A` produces and both layers are consistent.
pub const fn wired<A: Layer, B: Layer<Input = A::Output>>() {
    let () = A::CHECK;
    let () = B::CHECK;
}

/// The stem: 3×3 convolution, stride 2, RGB → `C` channels, with BN and ReLU; `H_IN` → `H_OUT`.
pub struct Stem<const C: usize, const H_IN: usize, const H_OUT: usize>(PhantomData<[f32; 0]>);

impl<const C: usize, const H_IN: usize, const H_OUT: usize> Layer for Stem<C, H_IN, H_OUT> {
    type Input = Features<{ regnet_spec::INPUT_CHANNELS }, H_IN, H_IN>;
    type Output = Features<C, H_OUT, H_OUT>;
    const CHECK: () = {
        assert!(C > 0 && H_IN > 0, "the stem needs channels and pixels");
        assert!(
            H_OUT == strided(H_IN, 2),
            "the stem halves the resolution: H_OUT = (H_IN - 1) / 2 + 1"
        );
    };
}

/// A residual bottleneck block (pycls `ResBottleneckBlock`): 1×1 `W_IN`→`W_B`, 3×3 with `GROUPS`
/// groups and stride `STRIDE`, squeeze-excitation to `SE` channels (0: none), 1×1 `W_B`→`W`,
/// plus the shortcut (a strided 1×1 projection when the shape changes), then ReLU.
pub struct Block<
    const W_IN: usize,
    const W: usize,
    const W_B: usize,
    const GROUPS: usize,
    const SE: usize,
    const STRIDE: usize,
    const H_IN: usize,
    const H_OUT: usize,
>(PhantomData<[f32; 0]>);

impl<
    const W_IN: usize,
    const W: usize,
    const W_B: usize,
    const GROUPS: usize,
    const SE: usize,
    const STRIDE: usize,
    const H_IN: usize,
    const H_OUT: usize,
> Layer for Block<W_IN, W, W_B, GROUPS, SE, STRIDE, H_IN, H_OUT>
{
    type Input = Features<W_IN, H_IN, H_IN>;
    type Output = Features<W, H_OUT, H_OUT>;
    const CHECK: () = {
        assert!(
            W_IN > 0 && W > 0 && W_B > 0 && GROUPS > 0,
            "a block needs channels"
        );
        assert!(
            W_B.is_multiple_of(GROUPS),
            "the groups must divide the bottleneck width"
        );
        assert!(STRIDE == 1 || STRIDE == 2, "blocks have stride 1 or 2");
        assert!(
            H_OUT == strided(H_IN, STRIDE),
            "H_OUT must be (H_IN - 1) / STRIDE + 1"
        );
    };
}

/// A stage: its first block (stride 2, from the previous width) and `REPEATS` identical blocks
/// that keep the shape.
pub struct Stage<First, Repeated, const REPEATS: usize>(PhantomData<(First, Repeated)>);

impl<First, Repeated, const REPEATS: usize> Layer for Stage<First, Repeated, REPEATS>
where
    First: Layer,
    Repeated: Layer<Input = First::Output, Output = First::Output>,
{
    type Input = First::Input;
    type Output = First::Output;
    const CHECK: () = {
        let () = First::CHECK;
        let () = Repeated::CHECK;
    };
}

/// The head: global average pool over `H`×`H`, then a `C` → `CLASSES` linear layer with bias.
pub struct Head<const C: usize, const H: usize, const CLASSES: usize>(PhantomData<[f32; 0]>);

impl<const C: usize, const H: usize, const CLASSES: usize> Layer for Head<C, H, CLASSES> {
    type Input = Features<C, H, H>;
    type Output = Logits<CLASSES>;
    const CHECK: () = assert!(
        C > 0 && H > 0 && CLASSES > 0,
        "the head needs features and classes"
    );
}
