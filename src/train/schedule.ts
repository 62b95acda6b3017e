/**
 * Learning rate: linear warm-up, then a half cosine down to a floor. FORGE (al_sid utils/lr_sched, the MAE
 * schedule) sets it before every step from the fractional epoch e = epoch + step / stepsPerEpoch:
 *   e <  warmup:  lr * e / warmup
 *   e >= warmup:  minLr + (lr - minLr) * 0.5 * (1 + cos(pi * (e - warmup) / (epochs - warmup)))
 */
export interface LrSchedule {
  lr: number;
  minLr: number;
  warmupEpochs: number;
  epochs: number;
}

export function learningRate(s: LrSchedule, epoch: number): number {
  if (epoch < s.warmupEpochs) return s.lr * epoch / s.warmupEpochs;
  const span = s.epochs - s.warmupEpochs;
  if (span <= 0) return s.lr;
  const progress = Math.min(1, (epoch - s.warmupEpochs) / span);
  return s.minLr + (s.lr - s.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
