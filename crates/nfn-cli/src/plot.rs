//! Small PNG plots without a font on the machine: a scatter plot, a histogram and line curves, drawn with the
//! `image` crate, labelled with the 8x8 bitmap font of `font8x8` (so CI machines with no fonts
//! draw the same picture).

use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GREY: Rgb<u8> = Rgb([200, 200, 200]);
const BLUE: Rgb<u8> = Rgb([31, 119, 180]);

/// Plot area in pixels and margins around it.
const SIZE: u32 = 480;
const LEFT: u32 = 64;
const BOTTOM: u32 = 48;
const TOP: u32 = 32;
const RIGHT: u32 = 16;

/// Draw `text` with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
fn text(img: &mut RgbImage, x: u32, y: u32, text: &str, scale: u32) {
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::LATIN_FONTS.get(ch));
        let Some(glyph) = glyph else { continue };
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8u32 {
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 8 + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, BLACK);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A tick label with as many decimals as a range of `span` needs (steps print as integers).
fn tick(v: f64, span: f64) -> String {
    let decimals = if span.abs() >= 50.0 {
        0
    } else if span.abs() >= 5.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$}")
}

/// A blank canvas with a title, axis labels, a frame and ticks at 0, 1/4, ..., 1 of both ranges.
struct Axes {
    img: RgbImage,
    x: (f64, f64),
    y: (f64, f64),
}

impl Axes {
    fn new(title: &str, xlabel: &str, ylabel: &str, x: (f64, f64), y: (f64, f64)) -> Self {
        let mut img = RgbImage::from_pixel(LEFT + SIZE + RIGHT, TOP + SIZE + BOTTOM, WHITE);
        // double size where the title fits, else single
        let scale = if 16 * title.chars().count() as u32 <= SIZE + RIGHT { 2 } else { 1 };
        text(&mut img, LEFT, 8, title, scale);
        text(&mut img, LEFT + SIZE / 2 - 4 * xlabel.len() as u32, TOP + SIZE + 32, xlabel, 1);
        for (i, ch) in ylabel.chars().enumerate() {
            text(
                &mut img,
                4,
                TOP + SIZE / 2 - 4 * ylabel.len() as u32 + 8 * i as u32,
                &ch.to_string(),
                1,
            );
        }
        let mut axes = Axes { img, x, y };
        for k in 0..=4 {
            let f = f64::from(k) / 4.0;
            let (px, py) = (
                LEFT + (f * f64::from(SIZE - 1)) as u32,
                TOP + SIZE - 1 - (f * f64::from(SIZE - 1)) as u32,
            );
            for t in 0..SIZE {
                axes.img.put_pixel(px, TOP + t, GREY);
                axes.img.put_pixel(LEFT + t, py, GREY);
            }
            let xv = tick(x.0 + f * (x.1 - x.0), x.1 - x.0);
            let yv = tick(y.0 + f * (y.1 - y.0), y.1 - y.0);
            text(&mut axes.img, px.saturating_sub(16), TOP + SIZE + 6, &xv, 1);
            text(&mut axes.img, LEFT - 44, py.saturating_sub(4), &yv, 1);
        }
        for t in 0..SIZE {
            for (px, py) in [
                (LEFT, TOP + t),
                (LEFT + SIZE - 1, TOP + t),
                (LEFT + t, TOP),
                (LEFT + t, TOP + SIZE - 1),
            ] {
                axes.img.put_pixel(px, py, BLACK);
            }
        }
        axes
    }

    /// The pixel of data point `(x, y)`, if inside the plot area.
    fn pixel(&self, x: f64, y: f64) -> Option<(u32, u32)> {
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        if !(0.0..=1.0).contains(&fx) || !(0.0..=1.0).contains(&fy) {
            return None;
        }
        let px = LEFT + (fx * f64::from(SIZE - 1)) as u32;
        let py = TOP + SIZE - 1 - (fy * f64::from(SIZE - 1)) as u32;
        Some((px, py))
    }

    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, colour: Rgb<u8>) {
        for py in y0.min(y1)..=y0.max(y1) {
            for px in x0.min(x1)..=x0.max(x1) {
                if px < self.img.width() && py < self.img.height() {
                    self.img.put_pixel(px, py, colour);
                }
            }
        }
    }
}

/// A scatter plot of `(xs[i], ys[i])` on equal ranges `[lo, hi]` with the diagonal `y = x`.
pub fn scatter(title: &str, xlabel: &str, ylabel: &str, xs: &[f64], ys: &[f64]) -> RgbImage {
    let finite = xs.iter().chain(ys).copied().filter(|v| v.is_finite());
    let (lo, hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let mut axes = Axes::new(title, xlabel, ylabel, (lo, hi), (lo, hi));
    for k in 0..SIZE {
        let v = lo + (hi - lo) * f64::from(k) / f64::from(SIZE - 1);
        if let Some((px, py)) = axes.pixel(v, v) {
            axes.img.put_pixel(px, py, Rgb([214, 39, 40]));
        }
    }
    for (&x, &y) in xs.iter().zip(ys) {
        if let Some((px, py)) = axes.pixel(x, y) {
            axes.fill(px.saturating_sub(1), py.saturating_sub(1), px + 1, py + 1, BLUE);
        }
    }
    axes.img
}

/// A histogram of `values` in `bins` equal bins over their range; the y axis counts values.
pub fn histogram(title: &str, xlabel: &str, values: &[f64], bins: usize) -> RgbImage {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) =
        finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
    let bins = bins.max(1);
    let mut counts = vec![0usize; bins];
    for v in &finite {
        let b = (((v - lo) / (hi - lo)) * bins as f64) as usize;
        counts[b.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut axes = Axes::new(title, xlabel, "count", (lo, hi), (0.0, top));
    for (b, &count) in counts.iter().enumerate() {
        let x0 = lo + (hi - lo) * b as f64 / bins as f64;
        let x1 = lo + (hi - lo) * (b + 1) as f64 / bins as f64;
        if let (Some((px0, py0)), Some((px1, _))) = (axes.pixel(x0, 0.0), axes.pixel(x1, 0.0)) {
            let (_, py1) = axes.pixel(x0, count as f64).unwrap_or((px0, py0));
            if count > 0 {
                axes.fill(px0 + 1, py1, px1.saturating_sub(1).max(px0 + 1), py0, BLUE);
            }
        }
    }
    axes.img
}

/// Colours of the curves' groups, in order of first appearance (matplotlib's first four).
const PALETTE: [Rgb<u8>; 4] = [BLUE, Rgb([255, 127, 14]), Rgb([44, 160, 44]), Rgb([214, 39, 40])];

/// Line curves: each series is `(group, points)`; series of one group (e.g. the seeds of one side)
/// share a colour and one legend entry. The ranges span every finite point.
pub fn lines(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> RgbImage {
    let points = || {
        series.iter().flat_map(|(_, p)| p.iter()).filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let span = |vals: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) =
            vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if lo < hi {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        }
    };
    let x = span(&mut points().map(|p| p.0));
    let (ylo, yhi) = span(&mut points().map(|p| p.1));
    let pad = (yhi - ylo) * 0.05;
    let mut axes = Axes::new(title, xlabel, ylabel, x, (ylo - pad, yhi + pad));
    let mut groups: Vec<&str> = Vec::new();
    for (group, pts) in series {
        let g = groups.iter().position(|g| g == group).unwrap_or_else(|| {
            groups.push(group);
            groups.len() - 1
        });
        let colour = PALETTE[g % PALETTE.len()];
        let pixels: Vec<(f32, f32)> = pts
            .iter()
            .filter_map(|&(x, y)| axes.pixel(x, y))
            .map(|(px, py)| (px as f32, py as f32))
            .collect();
        for pair in pixels.windows(2) {
            imageproc::drawing::draw_line_segment_mut(&mut axes.img, pair[0], pair[1], colour);
        }
        if let [only] = pixels.as_slice() {
            let (px, py) = (only.0 as u32, only.1 as u32);
            axes.fill(px.saturating_sub(1), py.saturating_sub(1), px + 1, py + 1, colour);
        }
    }
    for (g, name) in groups.iter().enumerate() {
        let y = TOP + 8 + 12 * g as u32;
        let x0 = LEFT + SIZE - 16 - 8 * name.chars().count() as u32 - 20;
        axes.fill(x0, y + 3, x0 + 14, y + 4, PALETTE[g % PALETTE.len()]);
        text(&mut axes.img, x0 + 20, y, name, 1);
    }
    axes.img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_where_their_values_say() {
        let img = scatter("t", "x", "y", &[0.0, 1.0, 0.5], &[0.0, 1.0, 0.25]);
        assert_eq!(img.dimensions(), (LEFT + SIZE + RIGHT, TOP + SIZE + BOTTOM));
        // (0.5, 0.25) sits a quarter up and half across the plot area
        let (px, py) = (LEFT + SIZE / 2, TOP + SIZE - SIZE / 4);
        let near =
            (px - 2..=px + 2).any(|x| (py - 2..=py + 2).any(|y| *img.get_pixel(x, y) == BLUE));
        assert!(near);
    }

    #[test]
    fn histogram_bars_are_as_tall_as_their_counts() {
        let img = histogram("t", "x", &[0.0, 0.1, 0.1, 1.0], 2);
        // the left bin holds 3 of the 4 values: its bar reaches the top; the right one a third
        let left = LEFT + SIZE / 4;
        assert_eq!(*img.get_pixel(left, TOP + 2), BLUE);
        let right = LEFT + 3 * SIZE / 4;
        assert_ne!(*img.get_pixel(right, TOP + SIZE / 2), BLUE);
        assert_eq!(*img.get_pixel(right, TOP + SIZE - 10), BLUE);
    }

    #[test]
    fn curves_of_one_group_share_a_colour_and_lines_join_their_points() {
        let rising = vec![(0.0, 0.0), (10.0, 1.0)];
        let falling = vec![(0.0, 1.0), (10.0, 0.0)];
        let series =
            [("a".to_string(), rising.clone()), ("a".into(), falling), ("b".into(), rising)];
        let img = lines("t", "step", "y", &series);
        let count = |c: Rgb<u8>| img.pixels().filter(|p| **p == c).count();
        // group a: two diagonals; group b, drawn last, covers the rising one
        assert!(count(PALETTE[0]) > SIZE as usize, "group a's falling diagonal");
        assert!(count(PALETTE[1]) > SIZE as usize, "group b's rising diagonal");
        assert_eq!(count(PALETTE[2]), 0, "two groups, two colours");
        // the middle of the rising diagonal (halfway along, 5% padding on y)
        let mid = (LEFT + SIZE / 2, TOP + SIZE / 2);
        let near = (mid.0 - 2..=mid.0 + 2)
            .any(|x| (mid.1 - 2..=mid.1 + 2).any(|y| *img.get_pixel(x, y) == PALETTE[1]));
        assert!(near);
    }
}
