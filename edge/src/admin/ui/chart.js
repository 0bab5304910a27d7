// A small line chart on a canvas: the last N samples of one series, scaled to its maximum.

export class LineChart {
  constructor(canvas, { points = 60 } = {}) {
    this.canvas = canvas;
    this.points = points;
    this.values = [];
  }

  push(value) {
    this.values.push(value);
    if (this.values.length > this.points) this.values.shift();
    this.draw();
  }

  draw() {
    const { canvas, values } = this;
    const ctx = canvas.getContext('2d');
    const w = canvas.width;
    const h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...values);
    ctx.strokeStyle = '#ccd';
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
    ctx.fillStyle = '#556';
    ctx.font = '12px sans-serif';
    ctx.fillText(String(Math.round(max)), 4, 14);
    if (values.length < 2) return;
    ctx.strokeStyle = '#2b6cb0';
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const x = (i / (this.points - 1)) * w;
      const y = h - 2 - (v / max) * (h - 20);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}
