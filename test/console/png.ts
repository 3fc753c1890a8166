import zlib from 'node:zlib';

/** A decoded PNG: width, height and RGBA pixels (8 bits per channel). */
export interface Image {
  width: number;
  height: number;
  rgba: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Decodes the PNGs a browser screenshot produces: 8-bit truecolour or greyscale, with or without
 * alpha, not interlaced (Chromium writes 8-bit RGB or RGBA). Anything else is an error, not a guess.
 */
export function decodePng(png: Buffer): Image {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG');
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (pos + 8 <= png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    pos += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const colour = data[9];
      const interlace = data[12];
      const byColour: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };
      channels = byColour[colour ?? -1] ?? 0;
      if (depth !== 8 || channels === 0 || interlace !== 0)
        throw new Error(`unsupported PNG (depth ${depth}, colour type ${colour}, interlace ${interlace})`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  if (width === 0 || height === 0) throw new Error('PNG without IHDR');
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error('PNG data too short');
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? (pixels[out + x - channels] as number) : 0;
      const b = y > 0 ? (pixels[out - stride + x] as number) : 0;
      const c = x >= channels && y > 0 ? (pixels[out - stride + x - channels] as number) : 0;
      const v = line[x] as number;
      let p: number;
      switch (filter) {
        case 0:
          p = v;
          break;
        case 1:
          p = v + a;
          break;
        case 2:
          p = v + b;
          break;
        case 3:
          p = v + ((a + b) >> 1);
          break;
        case 4: {
          const est = a + b - c;
          const pa = Math.abs(est - a);
          const pb = Math.abs(est - b);
          const pc = Math.abs(est - c);
          p = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new Error(`bad PNG filter ${filter}`);
      }
      pixels[out + x] = p & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = i * channels;
    const grey = channels <= 2;
    rgba[i * 4] = pixels[s] as number;
    rgba[i * 4 + 1] = (grey ? pixels[s] : pixels[s + 1]) as number;
    rgba[i * 4 + 2] = (grey ? pixels[s] : pixels[s + 2]) as number;
    rgba[i * 4 + 3] =
      channels === 4 ? (pixels[s + 3] as number) : channels === 2 ? (pixels[s + 1] as number) : 255;
  }
  return { width, height, rgba };
}

/** How much an image varies: distinct colours and the standard deviation of its luminance. */
export function imageStats(img: Image): { colours: number; lumaStdDev: number; inkShare: number } {
  const colours = new Set<number>();
  let sum = 0;
  let sumSq = 0;
  const n = img.width * img.height;
  const lumas = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = img.rgba[i * 4] as number;
    const g = img.rgba[i * 4 + 1] as number;
    const b = img.rgba[i * 4 + 2] as number;
    colours.add((r << 16) | (g << 8) | b);
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    lumas[i] = l;
    sum += l;
    sumSq += l * l;
  }
  const mean = sum / n;
  // Share of pixels that differ clearly from the most common luminance (the background).
  const hist = new Uint32Array(256);
  for (const l of lumas) hist[Math.round(l)]! += 1;
  const background = hist.indexOf(Math.max(...hist));
  let ink = 0;
  for (const l of lumas) if (Math.abs(l - background) > 24) ink++;
  return {
    colours: colours.size,
    lumaStdDev: Math.sqrt(Math.max(sumSq / n - mean * mean, 0)),
    inkShare: ink / n,
  };
}
