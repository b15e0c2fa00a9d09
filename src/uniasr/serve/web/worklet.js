// AudioWorklet: microphone audio at the context's rate -> 16 kHz PCM16 pieces posted to the page.
// Resampling: a windowed-sinc low-pass FIR (cut-off 7.2 kHz, so nothing above the new Nyquist folds back),
// then linear interpolation at the fractional input position of each output sample.

function lowpass(cutoff, taps) {
  // cutoff: fraction of the input rate (0..0.5); Hann-windowed sinc, normalised to unit DC gain.
  const h = new Float32Array(taps);
  const m = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - m;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.outRate = opts.targetRate || 16000;
    this.ratio = sampleRate / this.outRate; // input samples per output sample
    this.taps = this.ratio > 1 ? lowpass((0.45 * this.outRate) / sampleRate, 63) : null;
    this.hist = new Float32Array(this.taps ? this.taps.length - 1 : 0);
    this.filtered = new Float32Array(0); // low-passed input not yet consumed
    this.pos = 0; // fractional read position in `filtered`
    this.piece = new Int16Array(Math.round((this.outRate * (opts.chunkMs || 60)) / 1000));
    this.fill = 0;
  }

  filter(block) {
    if (!this.taps) return block;
    const L = this.taps.length;
    const x = new Float32Array(this.hist.length + block.length);
    x.set(this.hist);
    x.set(block, this.hist.length);
    const y = new Float32Array(block.length);
    for (let i = 0; i < block.length; i++) {
      let acc = 0;
      for (let k = 0; k < L; k++) acc += this.taps[k] * x[i + k];
      y[i] = acc;
    }
    this.hist = x.slice(x.length - (L - 1));
    return y;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.piece[this.fill++] = s < 0 ? s * 32768 : s * 32767;
    if (this.fill === this.piece.length) {
      const out = this.piece.slice(0);
      this.port.postMessage(out.buffer, [out.buffer]);
      this.fill = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const y = this.filter(channel);
    const buf = new Float32Array(this.filtered.length + y.length);
    buf.set(this.filtered);
    buf.set(y, this.filtered.length);
    let pos = this.pos;
    while (pos + 1 < buf.length) {
      const i = Math.floor(pos);
      const frac = pos - i;
      this.emit(buf[i] * (1 - frac) + buf[i + 1] * frac);
      pos += this.ratio;
    }
    const used = Math.min(Math.floor(pos), buf.length);
    this.filtered = buf.slice(used);
    this.pos = pos - used;
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
