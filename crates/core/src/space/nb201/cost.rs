//! Analytic parameter count and FLOPs of the full NAS-Bench-201 network
//! built around a cell.
//!
//! The network: a 3x3 stem convolution to C=16 channels with batch norm;
//! three stages of five cells at C, 2C and 4C channels, joined by residual
//! reduction blocks (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, shortcut avgpool2 +
//! conv1x1); a final BN + ReLU, global average pooling and a linear
//! classifier. In a cell, `nor_conv_kxk` is ReLU-conv-BN (k·k·C² weights and
//! 2C BN parameters); pooling, skip and none have no parameters.
//!
//! FLOPs follow the counting of NAS-Bench-Suite-Zero's `flops` proxy: a
//! convolution counts its multiply-accumulates, each BN two and each ReLU one
//! operation per output element, a pooling layer kernel-size operations per
//! output element, the classifier its weights and bias. Checked against the
//! `params` (exactly) and `flops` (to 0.03%) columns of the
//! NAS-Bench-Suite-Zero tables for CIFAR-10, CIFAR-100 and ImageNet16-120
//! (`tests/benchdata_contract.rs`).

use super::cell::{Cell, Op};
use crate::dataset::Dataset;

const STEM_CHANNELS: u64 = 16;
const CELLS_PER_STAGE: u64 = 5;

/// Parameters and FLOPs, both in millions (the tables' units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkCost {
    pub params_m: f64,
    pub flops_m: f64,
}

/// The cost of the network built around `cell`, as sent: an op on a dead
/// edge still has weights and still runs.
pub fn network_cost(cell: &Cell, dataset: Dataset) -> NetworkCost {
    let c0 = STEM_CHANNELS;
    let mut h = dataset.resolution();
    let hw = |h: u64| h * h;
    let (mut params, mut flops) = (0u64, 0u64);

    // Stem: conv3x3 3 -> C, BN.
    params += 3 * c0 * 9 + 2 * c0;
    flops += (3 * c0 * 9 + 2 * c0) * hw(h);

    let channels = [c0, 2 * c0, 4 * c0];
    for (stage, &c) in channels.iter().enumerate() {
        if stage > 0 {
            let ci = channels[stage - 1];
            let h_in = h;
            h /= 2;
            // conv_a: ReLU(in), conv3x3 stride 2, BN.
            params += ci * c * 9 + 2 * c;
            flops += ci * hw(h_in) + (ci * c * 9 + 2 * c) * hw(h);
            // conv_b: ReLU, conv3x3, BN.
            params += c * c * 9 + 2 * c;
            flops += (c + c * c * 9 + 2 * c) * hw(h);
            // Shortcut: avgpool 2x2 stride 2, conv1x1 without BN.
            params += ci * c;
            flops += (4 * ci + ci * c) * hw(h);
        }
        let (mut cell_params, mut cell_flops) = (0u64, 0u64);
        for op in cell.0 {
            match op {
                Op::NorConv3x3 | Op::NorConv1x1 => {
                    let k2 = if op == Op::NorConv3x3 { 9 } else { 1 };
                    cell_params += c * c * k2 + 2 * c;
                    // ReLU + conv + BN.
                    cell_flops += (c * c * k2 + 3 * c) * hw(h);
                }
                Op::AvgPool3x3 => cell_flops += 9 * c * hw(h),
                Op::SkipConnect | Op::None => {}
            }
        }
        params += CELLS_PER_STAGE * cell_params;
        flops += CELLS_PER_STAGE * cell_flops;
    }

    // Final BN + ReLU, global average pooling, classifier.
    let c_last = 4 * c0;
    let classes = dataset.num_classes();
    params += 2 * c_last + c_last * classes + classes;
    flops += (3 * c_last + c_last) * hw(h) + c_last * classes + classes;

    NetworkCost {
        params_m: params as f64 / 1e6,
        flops_m: flops as f64 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_nas_bench_suite_zero_rows() {
        // zccombine_nb201_cifar10_zc_proxies.csv, first row:
        // net (4, 0, 3, 1, 4, 3), flops 19.248832, params 0.129306.
        let cell = Cell::parse_naslib_tuple("(4, 0, 3, 1, 4, 3)").unwrap();
        let cost = network_cost(&cell, Dataset::Cifar10);
        assert!((cost.params_m - 0.129306).abs() < 1e-12);
        assert!((cost.flops_m - 19.248832).abs() / 19.248832 < 1e-3);
        // The ImageNet16-120 table, same net: flops 4.820032, params 0.136456.
        let cost = network_cost(&cell, Dataset::ImageNet16_120);
        assert!((cost.params_m - 0.136456).abs() < 1e-12);
        assert!((cost.flops_m - 4.820032).abs() / 4.820032 < 1e-3);
    }
}
