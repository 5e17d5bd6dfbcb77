// AudioWorklet processor of the continuous mode: mixes the microphone to mono and posts fixed-size
// Float32Array frames (processorOptions.frameSamples samples at the AudioContext's rate) to the page,
// which sends them over the WebSocket. Its output stays silent.
"use strict";

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = Math.max(1, (options.processorOptions && options.processorOptions.frameSamples) || 160);
    this.frame = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length > 0) {
      const n = channels[0].length;
      for (let i = 0; i < n; i++) {
        let v = 0;
        for (let c = 0; c < channels.length; c++) v += channels[c][i];
        this.frame[this.filled++] = v / channels.length;
        if (this.filled === this.size) {
          this.port.postMessage(this.frame, [this.frame.buffer]);
          this.frame = new Float32Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
