//! Exact numbers of the 24 paper models (pycls) and torchvision's variants, copied from
//! `shared/reference/zoo.json` (checked there against pycls main, pycls 0.1.1, torchvision and
//! timm). Stages are [depth, width, group width, bottleneck width, stride]; SE widths are
//! (first block, later blocks).

/// Asserts that `net` has `expected`'s stages, groups, SE widths and complexity.
pub fn assert_matches(net: &regnet_spec::CompiledSpec, expected: &Expected) {
    let stages: Vec<[usize; 5]> = net
        .stages
        .iter()
        .map(|s| {
            [
                s.depth,
                s.width,
                s.group_width,
                s.bottleneck_width,
                s.stride,
            ]
        })
        .collect();
    assert_eq!(stages, expected.stages, "{}: stages", expected.file);
    let groups: Vec<usize> = net.stages.iter().map(|s| s.groups()).collect();
    assert_eq!(groups, expected.groups, "{}: groups", expected.file);
    if let Some(se_widths) = expected.se_widths {
        let actual: Vec<_> = net
            .stages
            .iter()
            .map(|s| (s.se_width, s.se_width_rest))
            .collect();
        assert_eq!(actual, se_widths, "{}: SE widths", expected.file);
    }
    let cx = net.complexity;
    assert_eq!(
        (cx.flops, cx.params, cx.acts),
        (expected.flops, expected.params, expected.acts),
        "{}: flops, params, acts",
        expected.file
    );
}

pub struct Expected {
    pub file: &'static str,
    pub stages: &'static [[usize; 5]],
    pub groups: &'static [usize],
    pub se_widths: Option<&'static [(Option<usize>, Option<usize>)]>,
    pub flops: u64,
    pub params: u64,
    pub acts: u64,
}

pub const PYCLS_ZOO: [Expected; 24] = [
    Expected {
        file: "regnetx_200mf",
        stages: &[
            [1, 24, 8, 24, 2],
            [1, 56, 8, 56, 2],
            [4, 152, 8, 152, 2],
            [7, 368, 8, 368, 2],
        ],
        groups: &[3, 7, 19, 46],
        se_widths: None,
        flops: 199040872,
        params: 2684792,
        acts: 2164056,
    },
    Expected {
        file: "regnetx_400mf",
        stages: &[
            [1, 32, 16, 32, 2],
            [2, 64, 16, 64, 2],
            [7, 160, 16, 160, 2],
            [12, 384, 16, 384, 2],
        ],
        groups: &[2, 4, 10, 24],
        se_widths: None,
        flops: 397678568,
        params: 5157512,
        acts: 3143272,
    },
    Expected {
        file: "regnetx_600mf",
        stages: &[
            [1, 48, 24, 48, 2],
            [3, 96, 24, 96, 2],
            [5, 240, 24, 240, 2],
            [7, 528, 24, 528, 2],
        ],
        groups: &[2, 4, 10, 22],
        se_widths: None,
        flops: 600891112,
        params: 6196040,
        acts: 3975096,
    },
    Expected {
        file: "regnetx_800mf",
        stages: &[
            [1, 64, 16, 64, 2],
            [3, 128, 16, 128, 2],
            [7, 288, 16, 288, 2],
            [5, 672, 16, 672, 2],
        ],
        groups: &[4, 8, 18, 42],
        se_widths: None,
        flops: 799700712,
        params: 7259656,
        acts: 5148744,
    },
    Expected {
        file: "regnetx_1.6gf",
        stages: &[
            [2, 72, 24, 72, 2],
            [4, 168, 24, 168, 2],
            [10, 408, 24, 408, 2],
            [2, 912, 24, 912, 2],
        ],
        groups: &[3, 7, 17, 38],
        se_widths: None,
        flops: 1602850792,
        params: 9190136,
        acts: 7933512,
    },
    Expected {
        file: "regnetx_3.2gf",
        stages: &[
            [2, 96, 48, 96, 2],
            [6, 192, 48, 192, 2],
            [15, 432, 48, 432, 2],
            [2, 1008, 48, 1008, 2],
        ],
        groups: &[2, 4, 9, 21],
        se_widths: None,
        flops: 3176622952,
        params: 15296552,
        acts: 11367432,
    },
    Expected {
        file: "regnetx_4.0gf",
        stages: &[
            [2, 80, 40, 80, 2],
            [5, 240, 40, 240, 2],
            [14, 560, 40, 560, 2],
            [2, 1360, 40, 1360, 2],
        ],
        groups: &[2, 6, 14, 34],
        se_widths: None,
        flops: 3964499816,
        params: 22118248,
        acts: 12201608,
    },
    Expected {
        file: "regnetx_6.4gf",
        stages: &[
            [2, 168, 56, 168, 2],
            [4, 392, 56, 392, 2],
            [10, 784, 56, 784, 2],
            [1, 1624, 56, 1624, 2],
        ],
        groups: &[3, 7, 14, 29],
        se_widths: None,
        flops: 6460292264,
        params: 26209256,
        acts: 16369744,
    },
    Expected {
        file: "regnetx_8.0gf",
        stages: &[
            [2, 80, 80, 80, 2],
            [5, 240, 120, 240, 2],
            [15, 720, 120, 720, 2],
            [1, 1920, 120, 1920, 2],
        ],
        groups: &[1, 2, 6, 16],
        se_widths: None,
        flops: 7995133416,
        params: 39572648,
        acts: 14059688,
    },
    Expected {
        file: "regnetx_12gf",
        stages: &[
            [2, 224, 112, 224, 2],
            [5, 448, 112, 448, 2],
            [11, 896, 112, 896, 2],
            [1, 2240, 112, 2240, 2],
        ],
        groups: &[2, 4, 8, 20],
        se_widths: None,
        flops: 12086679016,
        params: 46106056,
        acts: 21366568,
    },
    Expected {
        file: "regnetx_16gf",
        stages: &[
            [2, 256, 128, 256, 2],
            [6, 512, 128, 512, 2],
            [13, 896, 128, 896, 2],
            [1, 2048, 128, 2048, 2],
        ],
        groups: &[2, 4, 7, 16],
        se_widths: None,
        flops: 15940756456,
        params: 54278536,
        acts: 25515496,
    },
    Expected {
        file: "regnetx_32gf",
        stages: &[
            [2, 336, 168, 336, 2],
            [7, 672, 168, 672, 2],
            [13, 1344, 168, 1344, 2],
            [1, 2520, 168, 2520, 2],
        ],
        groups: &[2, 4, 8, 15],
        se_widths: None,
        flops: 31735930792,
        params: 107811560,
        acts: 36302160,
    },
    Expected {
        file: "regnety_200mf",
        stages: &[
            [1, 24, 8, 24, 2],
            [1, 56, 8, 56, 2],
            [4, 152, 8, 152, 2],
            [7, 368, 8, 368, 2],
        ],
        groups: &[3, 7, 19, 46],
        se_widths: Some(&[
            (Some(8), None),
            (Some(6), None),
            (Some(14), Some(38)),
            (Some(38), Some(92)),
        ]),
        flops: 199519076,
        params: 3162996,
        acts: 2168052,
    },
    Expected {
        file: "regnety_400mf",
        stages: &[
            [1, 48, 8, 48, 2],
            [3, 104, 8, 104, 2],
            [6, 208, 8, 208, 2],
            [6, 440, 8, 440, 2],
        ],
        groups: &[6, 13, 26, 55],
        se_widths: Some(&[
            (Some(8), None),
            (Some(12), Some(26)),
            (Some(26), Some(52)),
            (Some(52), Some(110)),
        ]),
        flops: 401849056,
        params: 4344144,
        acts: 3892496,
    },
    Expected {
        file: "regnety_600mf",
        stages: &[
            [1, 48, 16, 48, 2],
            [3, 112, 16, 112, 2],
            [7, 256, 16, 256, 2],
            [4, 608, 16, 608, 2],
        ],
        groups: &[3, 7, 16, 38],
        se_widths: Some(&[
            (Some(8), None),
            (Some(12), Some(28)),
            (Some(28), Some(64)),
            (Some(64), Some(152)),
        ]),
        flops: 601227608,
        params: 6055160,
        acts: 4334296,
    },
    Expected {
        file: "regnety_800mf",
        stages: &[
            [1, 64, 16, 64, 2],
            [3, 128, 16, 128, 2],
            [8, 320, 16, 320, 2],
            [2, 768, 16, 768, 2],
        ],
        groups: &[4, 8, 20, 48],
        se_widths: Some(&[
            (Some(8), None),
            (Some(16), Some(32)),
            (Some(32), Some(80)),
            (Some(80), Some(192)),
        ]),
        flops: 797183328,
        params: 6263168,
        acts: 5249888,
    },
    Expected {
        file: "regnety_1.6gf",
        stages: &[
            [2, 48, 24, 48, 2],
            [6, 120, 24, 120, 2],
            [17, 336, 24, 336, 2],
            [2, 888, 24, 888, 2],
        ],
        groups: &[2, 5, 14, 37],
        se_widths: Some(&[
            (Some(8), Some(12)),
            (Some(12), Some(30)),
            (Some(30), Some(84)),
            (Some(84), Some(222)),
        ]),
        flops: 1612087326,
        params: 11202430,
        acts: 8044814,
    },
    Expected {
        file: "regnety_3.2gf",
        stages: &[
            [2, 72, 24, 72, 2],
            [5, 216, 24, 216, 2],
            [13, 576, 24, 576, 2],
            [1, 1512, 24, 1512, 2],
        ],
        groups: &[3, 9, 24, 63],
        se_widths: Some(&[
            (Some(8), Some(18)),
            (Some(18), Some(54)),
            (Some(54), Some(144)),
            (Some(144), None),
        ]),
        flops: 3176496162,
        params: 19436338,
        acts: 11263418,
    },
    Expected {
        file: "regnety_4.0gf",
        stages: &[
            [2, 128, 64, 128, 2],
            [6, 192, 64, 192, 2],
            [12, 512, 64, 512, 2],
            [2, 1088, 64, 1088, 2],
        ],
        groups: &[2, 3, 8, 17],
        se_widths: Some(&[
            (Some(8), Some(32)),
            (Some(32), Some(48)),
            (Some(48), Some(128)),
            (Some(128), Some(272)),
        ]),
        flops: 3973301344,
        params: 20646656,
        acts: 12287200,
    },
    Expected {
        file: "regnety_6.4gf",
        stages: &[
            [2, 144, 72, 144, 2],
            [7, 288, 72, 288, 2],
            [14, 576, 72, 576, 2],
            [2, 1296, 72, 1296, 2],
        ],
        groups: &[2, 4, 8, 18],
        se_widths: Some(&[
            (Some(8), Some(36)),
            (Some(36), Some(72)),
            (Some(72), Some(144)),
            (Some(144), Some(324)),
        ]),
        flops: 6355221876,
        params: 30583252,
        acts: 16407188,
    },
    Expected {
        file: "regnety_8.0gf",
        stages: &[
            [2, 168, 56, 168, 2],
            [4, 448, 56, 448, 2],
            [10, 896, 56, 896, 2],
            [1, 2016, 56, 2016, 2],
        ],
        groups: &[3, 8, 16, 36],
        se_widths: Some(&[
            (Some(8), Some(42)),
            (Some(42), Some(112)),
            (Some(112), Some(224)),
            (Some(224), None),
        ]),
        flops: 7963074196,
        params: 39180068,
        acts: 17968916,
    },
    Expected {
        file: "regnety_12gf",
        stages: &[
            [2, 224, 112, 224, 2],
            [5, 448, 112, 448, 2],
            [11, 896, 112, 896, 2],
            [1, 2240, 112, 2240, 2],
        ],
        groups: &[2, 4, 8, 20],
        se_widths: Some(&[
            (Some(8), Some(56)),
            (Some(56), Some(112)),
            (Some(112), Some(224)),
            (Some(224), None),
        ]),
        flops: 12092395504,
        params: 51822544,
        acts: 21384496,
    },
    Expected {
        file: "regnety_16gf",
        stages: &[
            [2, 224, 112, 224, 2],
            [4, 448, 112, 448, 2],
            [11, 1232, 112, 1232, 2],
            [1, 3024, 112, 3024, 2],
        ],
        groups: &[2, 4, 11, 27],
        se_widths: Some(&[
            (Some(8), Some(56)),
            (Some(56), Some(112)),
            (Some(112), Some(308)),
            (Some(308), None),
        ]),
        flops: 15911534044,
        params: 83590140,
        acts: 23041228,
    },
    Expected {
        file: "regnety_32gf",
        stages: &[
            [2, 232, 232, 232, 2],
            [5, 696, 232, 696, 2],
            [12, 1392, 232, 1392, 2],
            [1, 3712, 232, 3712, 2],
        ],
        groups: &[1, 3, 6, 16],
        se_widths: Some(&[
            (Some(8), Some(58)),
            (Some(58), Some(174)),
            (Some(174), Some(348)),
            (Some(348), None),
        ]),
        flops: 32279583362,
        params: 145046770,
        acts: 30261570,
    },
];
/// torchvision's variants (its own width/group rounding) and torchvision's RegNetY-128GF
/// (REFERENCE.md §3), as torchvision builds them.
pub const TORCHVISION: [Expected; 4] = [
    Expected {
        file: "regnetx_400mf_tv",
        stages: &[
            [1, 32, 16, 32, 2],
            [2, 64, 16, 64, 2],
            [7, 160, 16, 160, 2],
            [12, 400, 16, 400, 2],
        ],
        groups: &[2, 4, 10, 25],
        se_widths: None,
        flops: 413813608,
        params: 5495976,
        acts: 3174632,
    },
    Expected {
        file: "regnety_800mf_tv",
        stages: &[
            [1, 64, 16, 64, 2],
            [3, 144, 16, 144, 2],
            [8, 320, 16, 320, 2],
            [2, 784, 16, 784, 2],
        ],
        groups: &[4, 9, 20, 49],
        se_widths: None,
        flops: 833862848,
        params: 6432512,
        acts: 5420896,
    },
    Expected {
        file: "regnety_8.0gf_tv",
        stages: &[
            [2, 224, 56, 224, 2],
            [4, 448, 56, 448, 2],
            [10, 896, 56, 896, 2],
            [1, 2016, 56, 2016, 2],
        ],
        groups: &[4, 8, 16, 36],
        se_widths: None,
        flops: 8473087616,
        params: 39381472,
        acts: 19725216,
    },
    Expected {
        file: "regnety_128gf",
        stages: &[
            [2, 528, 264, 528, 2],
            [7, 1056, 264, 1056, 2],
            [17, 2904, 264, 2904, 2],
            [1, 7392, 264, 7392, 2],
        ],
        groups: &[2, 4, 11, 28],
        se_widths: None,
        flops: 127517896350,
        params: 644812894,
        acts: 71578334,
    },
];
