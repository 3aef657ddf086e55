// Types for r2unet-wasm (hand-written; the entry point is index.js).

/** The segmentation tasks of R2U-Net. */
export type Task = 'retina' | 'skin' | 'lung';

/** The compute backend: WebGPU, or burn-flex on the CPU (wasm SIMD). */
export type Backend = 'webgpu' | 'cpu';

export declare const TASKS: readonly Task[];

export interface InitOptions {
  /** Where to fetch the CPU build's .wasm from (default: next to cpu/r2unet_wasm.js). */
  cpuWasm?: string | URL;
  /** Where to fetch the WebGPU build's .wasm from (default: next to webgpu/r2unet_wasm.js). */
  webgpuWasm?: string | URL;
}

/** Loads the CPU build ahead of time. Optional: `Segmenter.create` loads what it needs. */
export default function init(options?: InitOptions): Promise<void>;

/** Tasks whose weights ship in this package. */
export declare function shippedTasks(): Task[];

/** An image decoded for display (RGBA, 8 bits per channel). */
export interface PreviewImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** Decodes an image file for display (TIFF, 16-bit and signed images stretched to 0..255). */
export declare function decodePreview(bytes: Uint8Array | ArrayBuffer): Promise<PreviewImage>;

export interface CreateOptions {
  /** The task; without `weights`, its shipped model is downloaded (and cached). */
  task?: Task;
  /** 'auto' (default): WebGPU when an adapter exists and it works, else the CPU. */
  backend?: 'auto' | Backend;
  /** Your own weights: a burnpack file exported by `r2unet export` (f32, f16 or int8). */
  weights?: Uint8Array | ArrayBuffer;
}

/** RGBA pixels, as in a canvas `ImageData`. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
}

export interface SegmentOptions {
  /** Probability at or above which a pixel is in the mask. Default 0.5. */
  threshold?: number;
  /** Called after each tile: `done` of `total` tiles. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Tile side in pixels. Default: on the CPU, an image of up to 450,000 pixels (after the task's
   * preprocessing; DRIVE and STARE photos fit) runs as one tile, larger ones in 256-pixel tiles;
   * on WebGPU always 256-pixel tiles. Giving `tile` or `stride` always tiles.
   */
  tile?: number;
  /** Step between tiles (default 192, or 3/4 of `tile` when only `tile` is given). */
  stride?: number;
  /**
   * Test-time augmentation: also run the image mirrored left-right, upside down and both, and
   * average the four probability maps. Four times the work; default false.
   */
  flips?: boolean;
}

export interface SegmentResult {
  /** The input's size. */
  width: number;
  height: number;
  /** Row-major, width * height, in 0..1. */
  probabilities: Float32Array;
  /** Row-major, width * height: 255 where probability >= threshold, else 0. */
  mask: Uint8Array;
  threshold: number;
  /** The backend that ran this image. */
  backend: Backend;
  /** Wall time of this call in milliseconds (decoding, preprocessing, model, stitching). */
  timeMs: number;
  /** Where that time went, in milliseconds: decoding the input, the task's preprocessing, the
   * model (every tile, blending included), and restoring to the input's size with the threshold. */
  timings: { decodeMs: number; preprocessMs: number; modelMs: number; finishMs: number };
}

/**
 * Errors are `Error`s whose `name` says whose fault it was: `InputError` (the image),
 * `WeightsError` (the weights or their download), `ConfigError` (an option), `BackendError`
 * (the device). A Segmenter stays usable after any of them.
 */
export declare class Segmenter {
  private constructor();
  static create(options: CreateOptions): Promise<Segmenter>;
  /** The backend the next `segment` runs on. */
  readonly backend: Backend;
  /** The task the weights were trained for. */
  readonly task: Task;
  /** Why 'auto' runs on the CPU (WebGPU missing or failed), if it does. */
  readonly fallbackReason: string | undefined;
  /** Provenance of the weights (dataset, epochs, metrics, architecture). */
  readonly info: Record<string, string>;
  /** Segments an ImageData / RGBA image, or the bytes of an image file. */
  segment(input: ImageData | RgbaImage | Uint8Array | ArrayBuffer, options?: SegmentOptions): Promise<SegmentResult>;
  /** Releases the model's memory; the Segmenter cannot be used afterwards. */
  free(): void;
}
