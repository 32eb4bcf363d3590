/*
 * fastdicom's JPEG codec over libjpeg-turbo 3 (ISO 10918-1: baseline,
 * extended 12-bit, lossless processes 14 and SV1, 2 to 16 bits).
 *
 * A thin layer in C because the libjpeg API reports errors by longjmp and
 * its structures are large: every setjmp/longjmp stays inside this file, so
 * no Rust frame is ever jumped over. Rust calls the three functions below
 * (fastdicom-codecs/src/jpeg.rs) and owns all buffers but the encoder's output.
 *
 * What this layer decides (DICOM rules, PS3.5 8.2.1):
 * - a 3-component stream holds YCbCr or RGB by its markers: an Adobe APP14
 *   marker's transform flag, else a JFIF APP0 marker (YCbCr), else component
 *   identifiers 'R' 'G' 'B' (RGB), else the data set's Photometric
 *   Interpretation (RGB means no colour transform);
 * - corrupt entropy-coded data (premature end, bad Huffman code, a marker in
 *   the middle of the data) is an error, not a warning: libjpeg would fill the
 *   rest of the image with grey and report success (damage that Huffman
 *   decoding resynchronises past cannot be seen by any decoder);
 * - arithmetic coding and progressive frames are refused: they are no process
 *   of the JPEG transfer syntaxes, and a cut stream of either decodes silently;
 * - the header must describe the frame the caller expects before any
 *   scanline is decoded (so nothing is allocated for a lying header), and a
 *   progressive stream may hold at most FD_MAX_SCANS scans.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

#define FD_MAX_SCANS 1000
#define FD_MSG 200

typedef struct {
  int width;
  int height;
  int components;
  int precision;
  int lossless;    /* SOF3/7/11/15 */
  int ycbcr;       /* 3 components coded as YCbCr (by the rules above) */
  int converted;   /* YCbCr was converted to RGB here */
  char message[FD_MSG];
} fd_jpeg_info;

struct fd_error {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char *message;
};

/* Our memory destination: libjpeg's jpeg_mem_dest frees and replaces its buffer as it
 * grows but reports the live one only at the end, so an error in between would leave
 * us holding a freed pointer. This one always knows the live buffer. */
struct fd_dest {
  struct jpeg_destination_mgr pub;
  unsigned char *buffer;
  size_t capacity;
  unsigned long size;
};

static void fd_dest_init(j_compress_ptr cinfo) {
  struct fd_dest *d = (struct fd_dest *)cinfo->dest;
  d->pub.next_output_byte = d->buffer;
  d->pub.free_in_buffer = d->capacity;
}

static boolean fd_dest_grow(j_compress_ptr cinfo) {
  struct fd_dest *d = (struct fd_dest *)cinfo->dest;
  size_t used = d->capacity; /* the whole buffer is full when libjpeg calls this */
  size_t capacity = d->capacity * 2;
  unsigned char *bigger = realloc(d->buffer, capacity);
  if (!bigger) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
  d->buffer = bigger;
  d->capacity = capacity;
  d->pub.next_output_byte = bigger + used;
  d->pub.free_in_buffer = capacity - used;
  return TRUE;
}

static void fd_dest_term(j_compress_ptr cinfo) {
  struct fd_dest *d = (struct fd_dest *)cinfo->dest;
  d->size = (unsigned long)(d->capacity - d->pub.free_in_buffer);
}

static void fd_error_exit(j_common_ptr cinfo) {
  struct fd_error *err = (struct fd_error *)cinfo->err;
  char buf[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, buf);
  snprintf(err->message, FD_MSG, "%s", buf);
  longjmp(err->jump, 1);
}

/* Warnings that mean the pixels are wrong become errors; the rest are ignored. */
static void fd_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return; /* trace messages */
  switch (cinfo->err->msg_code) {
  case JWRN_JPEG_EOF:
  case JWRN_HIT_MARKER:
  case JWRN_HUFF_BAD_CODE:
  case JWRN_MUST_RESYNC:
    fd_error_exit(cinfo);
    break;
  default:
    cinfo->err->num_warnings++;
  }
}

static void fd_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void fd_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > FD_MAX_SCANS) {
      struct fd_error *err = (struct fd_error *)cinfo->err;
      snprintf(err->message, FD_MSG, "more than %d scans in a progressive JPEG", FD_MAX_SCANS);
      longjmp(err->jump, 1);
    }
  }
}

static void fd_init_error(struct fd_error *err, char *message) {
  jpeg_std_error(&err->pub);
  err->pub.error_exit = fd_error_exit;
  err->pub.emit_message = fd_emit_message;
  err->pub.output_message = fd_output_message;
  err->message = message;
  message[0] = 0;
}

/*
 * Decode one frame into `out` (rows of width * components samples, item size
 * `out_itemsize`: 1 or 2 bytes, native order; `out_len` bytes exactly).
 * `photometric_rgb`: the data set says RGB. `keep_ycbcr`: leave YCbCr as
 * coded (lossy streams only). Returns 0, or -1 with info->message set.
 */
int fd_jpeg_decode(const unsigned char *data, size_t len, int photometric_rgb, int keep_ycbcr,
                   unsigned char *out, size_t out_len, int out_itemsize, int exp_width,
                   int exp_height, int exp_components, fd_jpeg_info *info) {
  struct jpeg_decompress_struct cinfo;
  struct fd_error jerr;
  struct jpeg_progress_mgr progress;
  /* assigned after setjmp and freed after a longjmp: volatile */
  void *volatile rowbuf = NULL;
  void **volatile rows = NULL;
  memset(info, 0, sizeof(*info));
  fd_init_error(&jerr, info->message);
  cinfo.err = &jerr.pub;
  if (len < 4 || len > (size_t)0xFFFFFFFFu) {
    snprintf(info->message, FD_MSG, "not a JPEG codestream (%zu bytes)", len);
    return -1;
  }
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(rowbuf);
    free(rows);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = fd_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  info->width = (int)cinfo.image_width;
  info->height = (int)cinfo.image_height;
  info->components = cinfo.num_components;
  info->precision = cinfo.data_precision;
  /* libjpeg-turbo sets the smallest DCT size to 1 for a lossless (SOF3/7/11/15) frame */
  info->lossless = cinfo.min_DCT_scaled_size == 1;
  if (cinfo.arith_code || cinfo.progressive_mode) {
    /* Not a process of the JPEG transfer syntaxes (PS3.5 8.2.1: sequential Huffman coding),
     * and a cut arithmetic or progressive stream decodes into plausible pixels without a
     * warning: refused. */
    snprintf(info->message, FD_MSG, "%s JPEG is not a process of the DICOM JPEG transfer syntaxes",
             cinfo.arith_code ? "arithmetic-coded" : "progressive");
    longjmp(jerr.jump, 1);
  }
  if (info->width != exp_width || info->height != exp_height || info->components != exp_components) {
    snprintf(info->message, FD_MSG,
             "the JPEG header says %dx%d with %d components, the data set %dx%d with %d",
             info->height, info->width, info->components, exp_height, exp_width, exp_components);
    longjmp(jerr.jump, 1);
  }
  int sample = info->precision <= 8 ? 1 : 2;
  if (out_itemsize != 1 && out_itemsize != 2) {
    snprintf(info->message, FD_MSG, "item size %d is not 1 or 2", out_itemsize);
    longjmp(jerr.jump, 1);
  }
  if (sample > out_itemsize) {
    snprintf(info->message, FD_MSG, "a %d-bit JPEG does not fit %d-byte samples", info->precision,
             out_itemsize);
    longjmp(jerr.jump, 1);
  }
  size_t row_samples = (size_t)exp_width * (size_t)exp_components;
  size_t row_bytes = row_samples * (size_t)out_itemsize;
  if (out_len != row_bytes * (size_t)exp_height) {
    snprintf(info->message, FD_MSG, "destination holds %zu bytes, the frame needs %zu", out_len,
             row_bytes * (size_t)exp_height);
    longjmp(jerr.jump, 1);
  }
  if (cinfo.num_components == 3) {
    int ycbcr;
    if (cinfo.saw_Adobe_marker)
      ycbcr = cinfo.Adobe_transform != 0;
    else if (cinfo.saw_JFIF_marker)
      ycbcr = 1;
    else if (cinfo.comp_info[0].component_id == 'R' && cinfo.comp_info[1].component_id == 'G' &&
             cinfo.comp_info[2].component_id == 'B')
      ycbcr = 0;
    else
      ycbcr = !photometric_rgb;
    info->ycbcr = ycbcr;
    if (ycbcr && !keep_ycbcr && !info->lossless) {
      cinfo.jpeg_color_space = JCS_YCbCr;
      cinfo.out_color_space = JCS_RGB;
      info->converted = 1;
    } else if (ycbcr && !info->lossless) {
      cinfo.jpeg_color_space = JCS_YCbCr;
      cinfo.out_color_space = JCS_YCbCr;
    } else {
      /* RGB, or lossless YCbCr (libjpeg converts no colour losslessly: the caller does) */
      cinfo.jpeg_color_space = JCS_RGB;
      cinfo.out_color_space = JCS_RGB;
    }
  } else if (cinfo.num_components == 1) {
    cinfo.jpeg_color_space = JCS_GRAYSCALE;
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else {
    snprintf(info->message, FD_MSG, "%d components (DICOM JPEG holds 1 or 3)", cinfo.num_components);
    longjmp(jerr.jump, 1);
  }
  jpeg_start_decompress(&cinfo);
  if ((int)cinfo.output_width != exp_width || (int)cinfo.output_height != exp_height ||
      cinfo.output_components != exp_components) {
    snprintf(info->message, FD_MSG, "unexpected output geometry");
    longjmp(jerr.jump, 1);
  }
  rows = malloc(sizeof(void *) * (size_t)exp_height);
  if (!rows) {
    snprintf(info->message, FD_MSG, "out of memory");
    longjmp(jerr.jump, 1);
  }
  int widen = sample != out_itemsize; /* 8-bit samples into 16-bit items */
  if (widen) {
    rowbuf = malloc(row_samples);
    if (!rowbuf) {
      snprintf(info->message, FD_MSG, "out of memory");
      longjmp(jerr.jump, 1);
    }
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JDIMENSION y = cinfo.output_scanline;
    JDIMENSION got;
    if (widen) {
      JSAMPROW r = (JSAMPROW)rowbuf;
      got = jpeg_read_scanlines(&cinfo, &r, 1);
      if (got == 1) {
        uint16_t *dst = (uint16_t *)(out + (size_t)y * row_bytes);
        for (size_t i = 0; i < row_samples; i++) dst[i] = ((unsigned char *)rowbuf)[i];
      }
    } else {
      JDIMENSION want = cinfo.output_height - y;
      for (JDIMENSION k = 0; k < want; k++) rows[k] = out + (size_t)(y + k) * row_bytes;
      if (info->precision <= 8)
        got = jpeg_read_scanlines(&cinfo, (JSAMPARRAY)rows, want);
      else if (info->precision <= 12)
        got = jpeg12_read_scanlines(&cinfo, (J12SAMPARRAY)rows, want);
      else
        got = jpeg16_read_scanlines(&cinfo, (J16SAMPARRAY)rows, want);
    }
    if (got == 0) {
      snprintf(info->message, FD_MSG, "the JPEG decoder stalled at row %u", (unsigned)y);
      longjmp(jerr.jump, 1);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  free(rowbuf);
  free(rows);
  return 0;
}

/*
 * Encode one frame: `in` holds rows of width * components samples, 1 byte
 * each up to 8 bits of precision and 2 (native order, values below
 * 2^precision) above. `lossless`: process 14, selection value 1 (SV1), any
 * precision from 2 to 16, components coded as given (no colour transform).
 * Otherwise baseline: 8 bits, `quality` 1..100, 3 components coded as YCbCr
 * with 4:2:2 subsampling when `subsample` (YBR_FULL_422), else 4:4:4 (YBR_FULL).
 * On success *out (malloc'd; fd_jpeg_free it) holds *out_len bytes.
 */
int fd_jpeg_encode(const unsigned char *in, size_t in_len, int width, int height, int components,
                   int precision, int lossless, int quality, int subsample, unsigned char **out,
                   unsigned long *out_len, fd_jpeg_info *info) {
  struct jpeg_compress_struct cinfo;
  struct fd_error jerr;
  void **volatile rows = NULL;
  /* the output buffer changes after setjmp: kept on the heap */
  struct fd_dest *volatile dest = calloc(1, sizeof(struct fd_dest));
  memset(info, 0, sizeof(*info));
  fd_init_error(&jerr, info->message);
  *out = NULL;
  *out_len = 0;
  int sample = precision <= 8 ? 1 : 2;
  if (!dest) {
    snprintf(info->message, FD_MSG, "out of memory");
    return -1;
  }
  if (width < 1 || height < 1 || width > 65535 || height > 65535 || (components != 1 && components != 3) ||
      precision < 2 || precision > 16 || (!lossless && precision != 8)) {
    snprintf(info->message, FD_MSG, "cannot encode %dx%d, %d components, %d bits as %s JPEG", height,
             width, components, precision, lossless ? "lossless" : "baseline");
    free(dest);
    return -1;
  }
  size_t row_bytes = (size_t)width * (size_t)components * (size_t)sample;
  if (in_len != row_bytes * (size_t)height) {
    snprintf(info->message, FD_MSG, "%zu bytes given, the frame needs %zu", in_len,
             row_bytes * (size_t)height);
    free(dest);
    return -1;
  }
  cinfo.err = &jerr.pub;
  if (setjmp(jerr.jump)) {
    jpeg_destroy_compress(&cinfo);
    free(rows);
    free(dest->buffer);
    free(dest);
    return -1;
  }
  jpeg_create_compress(&cinfo);
  dest->capacity = row_bytes * (size_t)height / 4 + 65536;
  dest->buffer = malloc(dest->capacity);
  if (!dest->buffer) {
    snprintf(info->message, FD_MSG, "out of memory");
    longjmp(jerr.jump, 1);
  }
  dest->pub.init_destination = fd_dest_init;
  dest->pub.empty_output_buffer = fd_dest_grow;
  dest->pub.term_destination = fd_dest_term;
  cinfo.dest = &dest->pub;
  cinfo.image_width = (JDIMENSION)width;
  cinfo.image_height = (JDIMENSION)height;
  cinfo.input_components = components;
  cinfo.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  cinfo.data_precision = precision;
  jpeg_set_defaults(&cinfo);
  if (lossless) {
    jpeg_set_colorspace(&cinfo, cinfo.in_color_space);
    jpeg_enable_lossless(&cinfo, 1, 0);
  } else {
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    if (components == 3) {
      jpeg_set_colorspace(&cinfo, JCS_YCbCr);
      cinfo.comp_info[0].h_samp_factor = subsample ? 2 : 1;
      cinfo.comp_info[0].v_samp_factor = 1;
      cinfo.comp_info[1].h_samp_factor = cinfo.comp_info[1].v_samp_factor = 1;
      cinfo.comp_info[2].h_samp_factor = cinfo.comp_info[2].v_samp_factor = 1;
    }
  }
  rows = malloc(sizeof(void *) * (size_t)height);
  if (!rows) {
    snprintf(info->message, FD_MSG, "out of memory");
    longjmp(jerr.jump, 1);
  }
  for (int y = 0; y < height; y++) rows[y] = (void *)(in + (size_t)y * row_bytes);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JDIMENSION y = cinfo.next_scanline, want = cinfo.image_height - y;
    if (precision <= 8)
      jpeg_write_scanlines(&cinfo, (JSAMPARRAY)(rows + y), want);
    else if (precision <= 12)
      jpeg12_write_scanlines(&cinfo, (J12SAMPARRAY)(rows + y), want);
    else
      jpeg16_write_scanlines(&cinfo, (J16SAMPARRAY)(rows + y), want);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  free(rows);
  *out = dest->buffer;
  *out_len = dest->size;
  free(dest);
  return 0;
}

void fd_jpeg_free(unsigned char *p) { free(p); }
