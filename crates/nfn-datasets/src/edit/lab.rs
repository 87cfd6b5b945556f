//! OpenCV's 8-bit sRGB ↔ CIE L\*a\*b\* conversion (`COLOR_BGR2Lab` / `COLOR_Lab2BGR` on `CV_8U`),
//! bit for bit.
//!
//! A port of `modules/imgproc/src/color_lab.cpp` (OpenCV 4.x / 5.0, identical here): the forward
//! direction is `RGB2Lab_b` (gamma table, fixed-point XYZ, cube-root table), the inverse is
//! `Lab2RGBinteger` (the bit-exact path OpenCV takes for 8-bit sRGB). The tables are built with the
//! same IEEE single / double steps as OpenCV's `softfloat` code, including its own cube root;
//! `pow` comes from the platform (OpenCV uses its own `exp(y log x)`), which the exhaustive tests
//! against OpenCV (all 2^24 inputs each way) show makes no difference to the tables.
//!
//! Channel order is OpenCV's BGR: `[b, g, r]` in, `[b, g, r]` out.

use std::sync::OnceLock;

/// `xyz_shift`, OpenCV's `lab_shift`.
const LAB_SHIFT: i32 = 12;
const GAMMA_SHIFT: i32 = 3;
const LAB_SHIFT2: i32 = LAB_SHIFT + GAMMA_SHIFT;
const CBRT_TAB_SIZE: usize = 256 * 3 / 2 * (1 << GAMMA_SHIFT);
const INV_GAMMA_SHIFT: i32 = 12;
const INV_GAMMA_TAB_SIZE: i32 = 1 << INV_GAMMA_SHIFT;
/// `LUT_BASE` and `Lab2RGBinteger::BASE`.
const BASE: i32 = 1 << 14;
const MIN_AB: i32 = -8145;
/// Fixed-point shift of `Lab2RGBinteger`'s XYZ → RGB step.
const XYZ2RGB_SHIFT: i32 = LAB_SHIFT + (14 - INV_GAMMA_SHIFT);

/// sRGB → XYZ (D65), rows X, Y, Z, columns R, G, B: OpenCV's exact doubles (`sRGB2XYZ_D65`).
const SRGB_TO_XYZ: [u64; 9] = [
    0x3fda65a14488c60d,
    0x3fd6e297396d0918,
    0x3fc71819d2391d58,
    0x3fcb38cda6e75ff6,
    0x3fe6e297396d0918,
    0x3fb279aae6c8f755,
    0x3f93cc4ac6cdaf4b,
    0x3fbe836eb4e98138,
    0x3fee68427418d691,
];
/// XYZ → sRGB (D65), rows R, G, B, columns X, Y, Z (`XYZ2sRGB_D65`).
const XYZ_TO_SRGB: [u64; 9] = [
    0x4009ec804102ff8f,
    0xbff8982a9930be0e,
    0xbfdfe7ff583a53b9,
    0xbfef042528ae74f3,
    0x3ffe040f23897204,
    0x3fa546d3f9e7b80b,
    0x3fac7de5082cf52c,
    0xbfca1e14bdfd2631,
    0x3ff0eabef06b3786,
];
/// The D65 white point (0.950456, 1, 1.088754).
const D65: [u64; 3] = [0x3fee6a22b3892ee8, 0x3ff0000000000000, 0x3ff16b8950763a19];

/// The conversion tables and coefficients, built once.
struct Tables {
    gamma: [u16; 256],
    cbrt: Vec<u16>,
    inv_gamma: Vec<u16>,
    /// `(y, ify)` per L value.
    l_to_yf: [(i32, i32); 256],
    ab_to_xz: Vec<i32>,
    /// BGR → X, Y, Z (white-point scaled), columns in B, G, R order.
    to_xyz: [i32; 9],
    /// X, Y, Z → R, G, B rows (`Lab2RGBinteger::coeffs` for `blueIdx = 0`).
    to_rgb: [i32; 9],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::new)
}

/// `cvRound`: round half to even.
fn round_f32(x: f32) -> i32 {
    x.round_ties_even() as i32
}

fn round_f64(x: f64) -> i32 {
    x.round_ties_even() as i32
}

/// `CV_DESCALE`: round a fixed-point value with `n` fraction bits (arithmetic shift).
fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

/// OpenCV's `applyGamma` (sRGB decoding), in double, returned as single.
fn apply_gamma(x: f32) -> f32 {
    let xd = x as f64;
    let (threshold, low_scale) = (809.0 / 20000.0, 323.0 / 25.0);
    let (power, shift) = (12.0 / 5.0, 11.0 / 200.0);
    let y =
        if xd <= threshold { xd / low_scale } else { ((xd + shift) / (1.0 + shift)).powf(power) };
    y as f32
}

/// OpenCV's `applyInvGamma` (sRGB encoding), in double, returned as single.
fn apply_inv_gamma(x: f32) -> f32 {
    let xd = x as f64;
    let (threshold, low_scale) = (7827.0 / 2_500_000.0, 323.0 / 25.0);
    let (power, shift) = (12.0 / 5.0, 11.0 / 200.0);
    let y =
        if xd <= threshold { xd * low_scale } else { xd.powf(1.0 / power) * (1.0 + shift) - shift };
    y as f32
}

/// OpenCV's `softfloat` cube root (Turkowski's rational approximation, truncated to single).
fn cbrt_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff == 0 {
        return 0.0;
    }
    let sign = bits >> 31;
    let mut ex = ((bits >> 23) & 0xff) as i32 - 127;
    let mut shx = ex % 3;
    shx -= if shx >= 0 { 3 } else { 0 };
    ex = (ex - shx) / 3 - 1;
    let fr = f64::from_bits((((shx + 1023) as u64) << 52) + (((bits & 0x7f_ffff) as u64) << 29));
    let a = [
        0x4046a09e6653ba70,
        0x406808f46c6116e0,
        0x405dca97439cae14,
        0x402add70d2827500,
        0x3fc4f15f83f55d2d,
        0x402d9e20660edb21,
        0x4062ff15c0285815,
        0x406510d06a8112ce,
        0x4040fecbc9e2c375,
    ]
    .map(f64::from_bits);
    let num = (((a[0] * fr + a[1]) * fr + a[2]) * fr + a[3]) * fr + a[4];
    let den = (((a[5] * fr + a[6]) * fr + a[7]) * fr + a[8]) * fr + 1.0;
    let frac = ((num / den).to_bits() & ((1 << 52) - 1)) >> 29;
    f32::from_bits((sign << 31) + (((ex + 127) as u32) << 23) + frac as u32)
}

impl Tables {
    fn new() -> Self {
        let f255 = 255.0f32;
        let mut gamma = [0u16; 256];
        let int_scale = (255 * (1 << GAMMA_SHIFT)) as f32;
        for (i, g) in gamma.iter_mut().enumerate() {
            *g = round_f32(int_scale * apply_gamma(i as f32 / f255)) as u16;
        }
        let inv_scale = 1.0 / INV_GAMMA_TAB_SIZE as f32;
        let inv_gamma = (0..INV_GAMMA_TAB_SIZE)
            .map(|i| round_f32(f255 * apply_inv_gamma(inv_scale * i as f32)) as u16)
            .collect();
        let (lthresh, lscale, lbias) = (216.0f32 / 24389.0, 841.0f32 / 108.0, 16.0f32 / 116.0);
        let cb_scale = 1.0f32 / (f255 * (1 << GAMMA_SHIFT) as f32);
        let lshift2 = (1 << LAB_SHIFT2) as f32;
        let cbrt = (0..CBRT_TAB_SIZE)
            .map(|i| {
                let x = cb_scale * i as f32;
                let f = if x < lthresh { x.mul_add(lscale, lbias) } else { cbrt_f32(x) };
                round_f32(lshift2 * f) as u16
            })
            .collect();
        let mut l_to_yf = [(0, 0); 256];
        for (i, yf) in (0i32..).zip(l_to_yf.iter_mut()) {
            *yf = if i <= 20 {
                let y = round_f32((i * BASE * 20 * 9) as f32 / (17 * 29 * 29 * 29) as f32);
                let f = 16.0f32 / 116.0 + (i * 5) as f32 / (3 * 17 * 29) as f32;
                (y, round_f32(BASE as f32 * f))
            } else {
                let fy =
                    (i * 100 * BASE) as f32 / (255 * 116) as f32 + (16 * BASE) as f32 / 116.0f32;
                (round_f32(fy * fy * fy / (BASE * BASE) as f32), round_f32(fy))
            };
        }
        let ab_to_xz = (MIN_AB..BASE * 9 / 4 + MIN_AB)
            .map(|i| {
                if i <= 3390 {
                    i * 108 / 841 - BASE * 16 / 116 * 108 / 841
                } else {
                    i * i / BASE * i / BASE
                }
            })
            .collect();
        let (m, inv, white) = (
            SRGB_TO_XYZ.map(f64::from_bits),
            XYZ_TO_SRGB.map(f64::from_bits),
            D65.map(f64::from_bits),
        );
        let lshift = (1 << LAB_SHIFT) as f64;
        let mut to_xyz = [0; 9];
        let mut to_rgb = [0; 9];
        for i in 0..3 {
            // RGB2Lab_b with blueIdx = 0: column 0 multiplies B, column 2 multiplies R.
            to_xyz[i * 3 + 2] = round_f64(lshift * m[i * 3] / white[i]);
            to_xyz[i * 3 + 1] = round_f64(lshift * m[i * 3 + 1] / white[i]);
            to_xyz[i * 3] = round_f64(lshift * m[i * 3 + 2] / white[i]);
            // Lab2RGBinteger with blueIdx = 0: row 0 is R, row 2 is B.
            to_rgb[i] = round_f64(lshift * inv[i] * white[i]);
            to_rgb[i + 3] = round_f64(lshift * inv[i + 3] * white[i]);
            to_rgb[i + 6] = round_f64(lshift * inv[i + 6] * white[i]);
        }
        Tables { gamma, cbrt, inv_gamma, l_to_yf, ab_to_xz, to_xyz, to_rgb }
    }
}

/// One BGR pixel to 8-bit Lab (`cv2.cvtColor(.., COLOR_BGR2LAB)`): `L * 255 / 100`, `a + 128`,
/// `b + 128`.
pub fn bgr_to_lab([b, g, r]: [u8; 3]) -> [u8; 3] {
    let t = tables();
    let c = &t.to_xyz;
    let (b, g, r) =
        (t.gamma[b as usize] as i32, t.gamma[g as usize] as i32, t.gamma[r as usize] as i32);
    let f = |k: usize| {
        t.cbrt[descale(b * c[k] + g * c[k + 1] + r * c[k + 2], LAB_SHIFT) as usize] as i32
    };
    let (fx, fy, fz) = (f(0), f(3), f(6));
    let l_scale = (116 * 255 + 50) / 100;
    let l_shift = -((16 * 255 * (1 << LAB_SHIFT2) + 50) / 100);
    let l = descale(l_scale * fy + l_shift, LAB_SHIFT2);
    let a = descale(500 * (fx - fy) + 128 * (1 << LAB_SHIFT2), LAB_SHIFT2);
    let bb = descale(200 * (fy - fz) + 128 * (1 << LAB_SHIFT2), LAB_SHIFT2);
    [l, a, bb].map(|v| v.clamp(0, 255) as u8)
}

/// One 8-bit Lab pixel back to BGR (`cv2.cvtColor(.., COLOR_LAB2BGR)`).
pub fn lab_to_bgr([l, a, b]: [u8; 3]) -> [u8; 3] {
    let t = tables();
    let (y, ify) = t.l_to_yf[l as usize];
    let (a, b) = (a as i32, b as i32);
    let adiv = ((5 * a * 53687 + (1 << 7)) >> 13) - 128 * BASE / 500;
    let bdiv = ((b * 41943 + (1 << 4)) >> 9) - 128 * BASE / 200 + 1;
    let x = t.ab_to_xz[(ify + adiv - MIN_AB) as usize];
    let z = t.ab_to_xz[(ify - bdiv - MIN_AB) as usize];
    let c = &t.to_rgb;
    let channel = |k: usize| {
        let v = descale(c[k] * x + c[k + 1] * y + c[k + 2] * z, XYZ2RGB_SHIFT);
        t.inv_gamma[v.clamp(0, INV_GAMMA_TAB_SIZE - 1) as usize].min(255) as u8
    };
    [channel(6), channel(3), channel(0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbrt_is_close_to_the_true_cube_root() {
        for x in [0.008_86f32, 0.1, 0.125, 0.5, 0.999, 1.0, 1.4] {
            assert!((cbrt_f32(x) - x.cbrt()).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn black_and_white_round_trip() {
        assert_eq!(bgr_to_lab([0, 0, 0]), [0, 128, 128]);
        assert_eq!(bgr_to_lab([255, 255, 255]), [255, 128, 128]);
        assert_eq!(lab_to_bgr([0, 128, 128]), [0, 0, 0]);
        assert_eq!(lab_to_bgr([255, 128, 128]), [255, 255, 255]);
    }
}
