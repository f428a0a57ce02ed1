// JPEG decoding through the system's libjpeg-turbo (SIMD), at a DCT scale of num/8: the
// IDCT then produces the smaller image directly, at a fraction of a full decode's cost.
// Every libjpeg warning (premature end of data, corrupt entropy-coded data, ...) is an
// error: a lenient decode would hand grey garbage to training. Errors unwind by longjmp
// inside this file only and come back as a message.
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

struct failure {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char* msg;
  size_t msg_len;
};

static void fail(j_common_ptr cinfo) {
  struct failure* f = (struct failure*)cinfo->err;
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  snprintf(f->msg, f->msg_len, "%s", text);
  longjmp(f->jump, 1);
}

// level -1 is a warning (the data is damaged but libjpeg would carry on); trace messages
// (level >= 0) are ignored.
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) fail(cinfo);
}

// 0: decoded; 1: damaged (message in `msg`); 2: a colour space this path does not convert
// (CMYK, YCCK), for the caller's other decoder.
// With `out` NULL only the header is read: `*width`, `*height` get the full size.
// `channels` 1 asks for grey (the luma plane), 3 for RGB; `num` in 1..=8 is the scale num/8.
// `box` (x, y, width, height in the scaled image; width 0: all of it) limits the decode to
// those rows and to columns widened to iMCU boundaries (`*x` gets where they start): the
// rows outside are still entropy-decoded (and the last one read), so damage anywhere in the
// file is still found.
int runner_jpeg_decode(const unsigned char* data, size_t len, int num, int channels, const unsigned int box[4], unsigned char* out, size_t cap,
                       int* x, int* width, int* height, char* msg, size_t msg_len) {
  struct jpeg_decompress_struct cinfo;
  struct failure f;
  volatile int status = 0;
  cinfo.err = jpeg_std_error(&f.mgr);
  f.mgr.error_exit = fail;
  f.mgr.emit_message = on_message;
  f.msg = msg;
  f.msg_len = msg_len;
  jpeg_create_decompress(&cinfo);
  if (setjmp(f.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return 1;
  }
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return 2;
  }
  *width = (int)cinfo.image_width;
  *height = (int)cinfo.image_height;
  if (out == NULL) {
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  cinfo.scale_num = (unsigned int)num;
  cinfo.scale_denom = 8;
  cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  // Pillow's and libjpeg's default: the accurate integer IDCT, smooth (fancy) upsampling.
  cinfo.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&cinfo);
  JDIMENSION left = 0, top = 0, rows = cinfo.output_height;
  if (box[2] > 0) {
    JDIMENSION cols = box[2];
    left = box[0];
    top = box[1];
    rows = box[3];
    if (top + rows > cinfo.output_height || left + cols > cinfo.output_width) {
      snprintf(msg, msg_len, "box outside the decoded image (%ux%u)", cinfo.output_width, cinfo.output_height);
      jpeg_destroy_decompress(&cinfo);
      return 1;
    }
    if (cols < cinfo.output_width) jpeg_crop_scanline(&cinfo, &left, &cols);
    if (top > 0) jpeg_skip_scanlines(&cinfo, top);
  }
  size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
  if (stride * rows > cap) {
    snprintf(msg, msg_len, "decoded image (%ux%u) larger than its buffer", cinfo.output_width, rows);
    status = 1;
  } else {
    for (JDIMENSION r = 0; r < rows; r++) {
      JSAMPROW row = out + stride * r;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    // Skipping to the end would not read the rest of the file; reading the last row does.
    JDIMENSION rest = cinfo.output_height - cinfo.output_scanline;
    if (rest > 0) {
      if (rest > 1) jpeg_skip_scanlines(&cinfo, rest - 1);
      JSAMPARRAY scratch = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)stride, 1);
      jpeg_read_scanlines(&cinfo, scratch, 1);
    }
    *x = (int)left;
    *width = (int)cinfo.output_width;
    *height = (int)rows;
    jpeg_finish_decompress(&cinfo);
  }
  jpeg_destroy_decompress(&cinfo);
  return status;
}
