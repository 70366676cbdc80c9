//! `regnet plot`: the paper's picture of the quantization (its Figure 6 style): the continuous
//! per-block widths u_j = w0 + wa·j against the quantized widths w_j, on a log width axis, with
//! the stage boundaries marked and the network's final stage widths (after the group rule).

use std::io::Cursor;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use regnet_spec::CompiledSpec;
use regnet_spec::block_widths;

use crate::output;

/// Text needs a font; this one (DejaVu Sans, Bitstream Vera licence, see
/// `assets/DejaVuSans-LICENSE.txt`) ships in the binary so no system font is needed.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const SIZE: (u32, u32) = (960, 600);

/// Draws the widths of `network` into `path`, SVG or PNG by its extension.
pub fn plot(network: &CompiledSpec, name: &str, path: &Path) -> Result<(), String> {
    // A directory named `widths.svg`, or one without an extension, is reported as a directory.
    output::check(path)?;
    // Both backends lay text out with this font (the PNG one also draws it). Registering
    // again, for a second plot in one process, is harmless.
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| "the embedded font is not a valid TrueType font".to_owned())?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let bytes = match extension.as_deref() {
        Some("svg") => {
            let mut svg = String::new();
            draw(
                &SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
                network,
                name,
            )?;
            svg.into_bytes()
        }
        Some("png") => {
            // Drawn into memory and encoded by the `image` crate the CLI already uses (plotters'
            // own encoder would build a second, older `image`).
            let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            draw(
                &BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area(),
                network,
                name,
            )?;
            let mut png = Vec::new();
            image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels)
                .expect("the buffer holds SIZE's RGB pixels")
                .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| format!("cannot encode the plot as PNG: {e}"))?;
            png
        }
        _ => {
            return Err(format!(
                "{}: the plot is written as .svg or .png; name the file with one of those",
                path.display()
            ));
        }
    };
    output::write(path, &bytes)
}

fn draw<B: DrawingBackend>(
    area: &DrawingArea<B, Shift>,
    network: &CompiledSpec,
    name: &str,
) -> Result<(), String> {
    let fail = |e: DrawingAreaErrorKind<B::ErrorType>| format!("cannot draw the plot: {e}");
    let spec = &network.spec;
    // A spec in the per-stage form has no width function: only its stage widths are drawn.
    let widths = block_widths(spec);
    // The network's stage widths after the group rule, block by block.
    let stage_widths: Vec<f64> = network
        .stages
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.width as f64, s.depth))
        .collect();
    let values = widths
        .iter()
        .flatten()
        .flat_map(|w| [w.continuous, w.quantized as f64])
        .chain(stage_widths.iter().copied());
    let (low, high) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let blocks = stage_widths.len();
    area.fill(&WHITE).map_err(fail)?;
    let complexity = network.complexity;
    let title = format!(
        "{name}: {}{}, {:.3} GF, {:.2} M params",
        // The per-stage lists do not fit a title line, and the plot shows them.
        if widths.is_some() {
            spec.parameters()
        } else {
            "per-stage spec".to_owned()
        },
        if spec.se { " SE" } else { "" },
        complexity.flops as f64 / 1e9,
        complexity.params as f64 / 1e6,
    );
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            -0.5f64..blocks as f64 - 0.5,
            ((low * 0.8)..(high * 1.25)).log_scale(),
        )
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc("block j")
        .y_desc("width (log scale)")
        .x_label_formatter(&|j| format!("{j:.0}"))
        .y_label_formatter(&|w| format!("{w:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(fail)?;
    // Stage boundaries (grey verticals): before the first block of every stage but the first.
    let mut first = 0;
    for stage in &network.stages[..network.stages.len().saturating_sub(1)] {
        first += stage.depth;
        let x = first as f64 - 0.5;
        chart
            .draw_series(LineSeries::new(
                [(x, low * 0.8), (x, high * 1.25)],
                BLACK.mix(0.6).stroke_width(2),
            ))
            .map_err(fail)?;
    }
    if let Some(widths) = &widths {
        let continuous: Vec<(f64, f64)> = widths
            .iter()
            .enumerate()
            .map(|(j, w)| (j as f64, w.continuous))
            .collect();
        chart
            .draw_series(LineSeries::new(continuous, BLUE.stroke_width(2)))
            .map_err(fail)?
            .label("continuous u_j = w0 + wa·j")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        // Quantized widths as a step: flat over each block.
        let steps: Vec<(f64, f64)> = widths
            .iter()
            .enumerate()
            .flat_map(|(j, w)| {
                let w = w.quantized as f64;
                [(j as f64 - 0.5, w), (j as f64 + 0.5, w)]
            })
            .collect();
        chart
            .draw_series(LineSeries::new(steps, RED.stroke_width(2)))
            .map_err(fail)?
            .label("quantized w_j = w0·wm^round(log_wm(u_j/w0)), to multiples of q")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    chart
        .draw_series(
            stage_widths
                .iter()
                .enumerate()
                .map(|(j, &w)| Circle::new((j as f64, w), 4, GREEN.mix(0.8).filled())),
        )
        .map_err(fail)?
        .label(if widths.is_some() {
            "stage widths after the group rule (grey lines: stage boundaries)"
        } else {
            "stage widths as the spec gives them (grey lines: stage boundaries)"
        })
        .legend(|(x, y)| Circle::new((x + 10, y), 4, GREEN.mix(0.8).filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(fail)?;
    area.present().map_err(fail)
}
