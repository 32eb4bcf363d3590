# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""HTJ2K (JPEG 2000 Part 15) codestreams through OpenJPH 0.9 (fastdicom._cy._openjph).

A thin binding: the Python wrapper (fastdicom.pixels._codecs_openjph) picks
dtypes and options; this module reads headers, decodes into the caller's
buffer and encodes, with the GIL released around the codec work.

OpenJPH reports problems through global message handlers whose defaults
print to stderr (errors then throw). The handlers installed at import print
nothing: an error throws std::runtime_error with OpenJPH's message, which
becomes ValueError; warnings are counted per thread (``_warnings``).

OpenJPH 0.9 trusts its input (its asserts are compiled in, and a corrupt
packet header can overflow its heap), so a codestream is checked before it
gets there: an EOC found by walking its structure (anything after it is
padding, left out), marker segments and tile-part lengths that add up,
COD/QCD values it can take, tiles it decodes right; and it is read
through ``strict_infile`` with padding after each tile-part, which turns the
reads that would precede a heap overflow into errors. The encoder and
decoder handle at most 16 bits per sample (MAX_PRECISION).
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memchr, memcpy, memset
from libcpp cimport bool as cbool

__version__ = "0.1.0"

cdef extern from *:
    """
    #include <cstdarg>
    #include <cstdio>
    #include <algorithm>
    #include <cstring>
    #include <vector>
    #include <stdexcept>
    #include <string>
    #include "ojph_arch.h"
    #include "ojph_base.h"
    #include "ojph_codestream.h"
    #include "ojph_file.h"
    #include "ojph_mem.h"
    #include "ojph_message.h"
    #include "ojph_params.h"
    #include "ojph_version.h"

    namespace fastdicom_ojph {
    // Errors throw with OpenJPH's message; warnings are counted per thread; nothing is printed.
    static thread_local unsigned warnings = 0;
    static thread_local char last_warning[256];

    class error_handler : public ojph::message_error {
    public:
      void operator()(int, const char *, int, const char *fmt, ...) override {
        char text[512];
        va_list args;
        va_start(args, fmt);
        vsnprintf(text, sizeof(text), fmt, args);
        va_end(args);
        std::string message(text);
        while (!message.empty() && (message.back() == '\\n' || message.back() == ' '))
          message.pop_back();
        throw std::runtime_error("OpenJPH: " + message);
      }
    };
    class warning_handler : public ojph::message_warning {
    public:
      void operator()(int, const char *, int, const char *fmt, ...) override {
        va_list args;
        va_start(args, fmt);
        vsnprintf(last_warning, sizeof(last_warning), fmt, args);
        va_end(args);
        ++warnings;
      }
    };
    class info_handler : public ojph::message_info {
    public:
      void operator()(int, const char *, int, const char *, ...) override {}
    };
    }  // namespace fastdicom_ojph

    #if OPENJPH_VERSION_MAJOR == 0 && OPENJPH_VERSION_MINOR == 9
    // OpenJPH 0.9's configure_error/warning/info return without storing their argument
    // (a bug: Debian's 0.9.0 build shows them as a bare `ret`), and its OJPH_ERROR,
    // OJPH_WARN and OJPH_INFO call the library's own handler objects ojph::error,
    // ojph::warn and ojph::info, which print to stderr. Those objects hold nothing but
    // their vtable pointer: construct ours in their place instead.
    namespace ojph {
    extern message_error error;
    extern message_warning warn;
    extern message_info info;
    }
    #include <new>
    static_assert(sizeof(fastdicom_ojph::error_handler) == sizeof(ojph::message_error), "handler size");
    static_assert(sizeof(fastdicom_ojph::warning_handler) == sizeof(ojph::message_warning), "handler size");
    static_assert(sizeof(fastdicom_ojph::info_handler) == sizeof(ojph::message_info), "handler size");
    #endif

    namespace fastdicom_ojph {
    static void install_handlers() {
    #if OPENJPH_VERSION_MAJOR == 0 && OPENJPH_VERSION_MINOR == 9
      new (&ojph::error) error_handler();
      new (&ojph::warn) warning_handler();
      new (&ojph::info) info_handler();
    #else
      static error_handler the_error;
      static warning_handler the_warning;
      static info_handler the_info;
      ojph::configure_error(&the_error);
      ojph::configure_warning(&the_warning);
      ojph::configure_info(&the_info);
    #endif
    }

    // For Cython's `except +raise_error`: a C++ exception becomes ValueError (MemoryError for bad_alloc).
    static void raise_error() {
      try {
        throw;
      } catch (const std::bad_alloc &) {
        PyErr_SetString(PyExc_MemoryError, "OpenJPH: out of memory");
      } catch (const std::exception &exc) {
        PyErr_SetString(PyExc_ValueError, exc.what());
      } catch (...) {
        PyErr_SetString(PyExc_ValueError, "OpenJPH: unknown error");
      }
    }

    // The codestream in memory, read strictly. OpenJPH 0.9 reads a code-block's bytes
    // into a buffer of min(length, bytes left in the tile-part) + 24 bytes, then zero-fills
    // up to the length its packet header gave: a corrupt length longer than the tile-part
    // overflows the heap. So each tile-part comes padded (its Psot grown to cover the pad),
    // and a read that touches a pad throws: valid packets never reach it, and such a
    // length always reads up to the end of the pad before the zero fill. A read past the
    // end throws too, rather than returning less.
    class strict_infile : public ojph::infile_base {
    public:
      void open(const uint8_t *data, size_t size) {
        this->data = data;
        this->size = size;
        pos = 0;
        pads.clear();
      }
      // [start, start + length) is padding (starts added in increasing order)
      void add_pad(size_t start, size_t length) {
        pads.push_back(start);
        pad_length = length;
      }
      size_t read(void *ptr, size_t n) override {
        if (n > size - pos)
          throw std::runtime_error("OpenJPH: a length in the codestream runs past its end (corrupt packet header?)");
        if (n && !pads.empty()) {  // the first pad that ends after pos must start at or after pos + n
          auto it = std::upper_bound(pads.begin(), pads.end(), pos, [this](size_t p, size_t start) {
            return p < start + pad_length;
          });
          if (it != pads.end() && pos + n > *it)
            throw std::runtime_error("OpenJPH: a code-block runs past its tile-part (corrupt packet header)");
        }
        memcpy(ptr, data + pos, n);
        pos += n;
        return n;
      }
      int seek(ojph::si64 offset, enum infile_base::seek origin) override {
        ojph::si64 base = origin == OJPH_SEEK_SET ? 0 : origin == OJPH_SEEK_CUR ? (ojph::si64)pos : (ojph::si64)size;
        if (offset < -base || offset > (ojph::si64)size - base)
          return -1;
        pos = (size_t)(base + offset);
        return 0;
      }
      ojph::si64 tell() override { return (ojph::si64)pos; }
      bool eof() override { return pos >= size; }

    private:
      const uint8_t *data = nullptr;
      size_t size = 0, pos = 0, pad_length = 0;
      std::vector<size_t> pads;
    };

    static unsigned take_warnings(const char **last) {
      unsigned n = warnings;
      warnings = 0;
      *last = last_warning;
      return n;
    }

    struct siz_info {
      uint32_t width, height, components, precision;
      bool is_signed, reversible, colour_transform;
      int odd_component;  // -1, or the first component that is subsampled or differs from the first
      uint32_t levels;
      bool degenerate;  // a tile that OpenJPH 0.9 decodes wrongly (see below)
    };

    // The main header's SIZ and COD, as the parameter objects (which have no default constructor) say.
    static void get_siz_info(ojph::codestream &cs, siz_info &info) {
      ojph::param_siz siz = cs.access_siz();
      ojph::param_cod cod = cs.access_cod();
      ojph::point extent = siz.get_image_extent(), offset = siz.get_image_offset();
      info.width = extent.x - offset.x;
      info.height = extent.y - offset.y;
      info.components = siz.get_num_components();
      info.precision = siz.get_bit_depth(0);
      info.is_signed = siz.is_signed(0);
      info.reversible = cod.is_reversible();
      info.colour_transform = cod.is_using_color_transform();
      info.odd_component = -1;
      info.levels = cod.get_num_decompositions();
      // OpenJPH 0.9 decodes a tile wrongly (garbage, or an error) when a decomposition level
      // is left with 1x1 samples and more levels follow: 2^(levels - 1) >= the tile's larger
      // side. Other decoders read such codestreams; this one must not. Tiles come in at most
      // three widths (first, inner, last column) and three heights.
      info.degenerate = false;
      if (info.levels > 0 && info.width > 0 && info.height > 0) {
        ojph::size tile = siz.get_tile_size();
        ojph::point tile_offset = siz.get_tile_offset();
        uint64_t reach = (uint64_t)1 << (info.levels - 1);
        uint64_t sides[2][3];
        int counts[2];
        for (int axis = 0; axis < 2; ++axis) {
          uint64_t t0 = axis ? tile_offset.y : tile_offset.x, t = axis ? tile.h : tile.w;
          uint64_t lo = axis ? offset.y : offset.x, hi = axis ? extent.y : extent.x;
          int n = 0;
          if (t == 0 || t0 > lo) {  // refused by OpenJPH; be safe anyway
            info.degenerate = true;
            counts[axis] = 0;
            continue;
          }
          uint64_t first_end = t0 + t * ((lo - t0) / t + 1);  // end of the tile holding lo
          sides[axis][n++] = (first_end < hi ? first_end : hi) - lo;
          if (first_end < hi) {
            uint64_t last_start = t0 + t * ((hi - 1 - t0) / t);
            sides[axis][n++] = hi - last_start;
            if (last_start > first_end) sides[axis][n++] = t;
          }
          counts[axis] = n;
        }
        for (int i = 0; i < counts[0]; ++i)
          for (int j = 0; j < counts[1]; ++j) {
            uint64_t side = sides[0][i] > sides[1][j] ? sides[0][i] : sides[1][j];
            if (side > 1 && reach >= side) info.degenerate = true;
          }
      }
      for (uint32_t c = 0; c < info.components; ++c) {
        ojph::point down = siz.get_downsampling(c);
        if (down.x != 1 || down.y != 1 || siz.get_recon_width(c) != info.width ||
            siz.get_recon_height(c) != info.height || siz.get_bit_depth(c) != info.precision ||
            siz.is_signed(c) != info.is_signed) {
          info.odd_component = (int)c;
          break;
        }
      }
    }

    static void set_params(ojph::codestream &cs, uint32_t columns, uint32_t rows, uint32_t samples,
                           uint32_t bits, bool is_signed, uint32_t levels, float qstep) {
      ojph::param_siz siz = cs.access_siz();
      siz.set_image_extent(ojph::point(columns, rows));
      siz.set_image_offset(ojph::point(0, 0));
      siz.set_tile_size(ojph::size(columns, rows));
      siz.set_tile_offset(ojph::point(0, 0));
      siz.set_num_components(samples);
      for (uint32_t c = 0; c < samples; ++c)
        siz.set_component(c, ojph::point(1, 1), bits, is_signed);
      ojph::param_cod cod = cs.access_cod();
      cod.set_num_decomposition(levels);
      cod.set_block_dims(64, 64);
      cod.set_progression_order("RPCL");
      cod.set_color_transform(samples == 3);
      cod.set_reversible(qstep == 0);
      if (qstep != 0)
        cs.access_qcd().set_irrev_quant(qstep);
    }
    }  // namespace fastdicom_ojph
    """
    void install_handlers "fastdicom_ojph::install_handlers"() nogil
    void raise_error "fastdicom_ojph::raise_error"()
    unsigned take_warnings "fastdicom_ojph::take_warnings"(const char **last) nogil

    cdef struct siz_info "fastdicom_ojph::siz_info":
        uint32_t width
        uint32_t height
        uint32_t components
        uint32_t precision
        cbool is_signed
        cbool reversible
        cbool colour_transform
        int odd_component
        uint32_t levels
        cbool degenerate

cdef extern from "ojph_mem.h" namespace "ojph" nogil:
    cdef cppclass line_buf:
        size_t size
        int32_t *i32

cdef extern from "ojph_file.h" namespace "ojph" nogil:
    cdef cppclass outfile_base:
        pass

    cdef cppclass infile_base:
        pass

    cdef cppclass mem_outfile(outfile_base):
        mem_outfile()
        void open(size_t initial_size) except +raise_error
        int64_t tell()
        const uint8_t *get_data()

cdef extern from "ojph_codestream.h" namespace "ojph" nogil:
    cdef cppclass codestream:
        codestream() except +raise_error
        void set_planar(cbool planar) except +raise_error
        void write_headers(outfile_base *file) except +raise_error
        line_buf *exchange(line_buf *line, uint32_t &next_component) except +raise_error
        void flush() except +raise_error
        void read_headers(infile_base *file) except +raise_error
        void create() except +raise_error
        line_buf *pull(uint32_t &comp_num) except +raise_error
        void close() except +raise_error

cdef extern from *:
    cdef cppclass strict_infile "fastdicom_ojph::strict_infile"(infile_base):
        strict_infile()
        void open(const uint8_t *data, size_t size) nogil
        void add_pad(size_t start, size_t length) except +raise_error

    void get_siz_info "fastdicom_ojph::get_siz_info"(codestream &cs, siz_info &info) except +raise_error nogil
    void set_params "fastdicom_ojph::set_params"(
        codestream &cs, uint32_t columns, uint32_t rows, uint32_t samples, uint32_t bits, cbool is_signed,
        uint32_t levels, float qstep
    ) except +raise_error nogil

install_handlers()


def _warnings():
    """``(count, last message)`` of the OpenJPH warnings in this thread since the last call (for tests)."""
    cdef const char *last = NULL
    cdef unsigned n = take_warnings(&last)
    return n, last.decode("utf-8", "replace") if n else ""

#: The largest sample precision handled here: OpenJPH 0.9's block coder fails on many images from about
#: 19 bits, and its encoder aborts (an assert) from about 28.
MAX_PRECISION = 16


cdef Py_ssize_t _be32(const uint8_t *p) noexcept nogil:
    return (<Py_ssize_t>p[0] << 24) | (<Py_ssize_t>p[1] << 16) | (<Py_ssize_t>p[2] << 8) | p[3]


cdef inline Py_ssize_t _be16(const uint8_t *p) noexcept nogil:
    return (<Py_ssize_t>p[0] << 8) | p[1]


cdef Py_ssize_t _segment_end(const uint8_t *p, Py_ssize_t at, Py_ssize_t n) noexcept nogil:
    """The byte after the marker segment at ``at`` (its length checked), or -1."""
    cdef Py_ssize_t length
    if at + 4 > n:
        return -1
    length = _be16(p + at + 2)
    return at + 2 + length if length >= 2 and at + 2 + length <= n else -1


cdef Py_ssize_t _eoc_end(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """The byte after the EOC marker of the codestream ``p[:n]`` (SOC first), or -1 without one.

    Found by the structure, as ``fastdicom.pixels.codecs.j2k_end`` and the
    Rust crate's ``markers::j2k_end`` find it: main header marker segments
    by their lengths, tile-parts by their Psot up to EOC, a last tile-part of
    Psot 0 up to the first EOC after its SOD. What follows EOC is padding.
    """
    cdef Py_ssize_t pos = 2, psot, at
    cdef uint8_t code
    if n < 2 or p[0] != 0xFF or p[1] != 0x4F:
        return -1
    while True:  # the main header
        if pos < 0 or pos + 2 > n or p[pos] != 0xFF:
            return -1
        code = p[pos + 1]
        if code == 0x90:
            break
        if code == 0xD9:
            return pos + 2
        pos = pos + 2 if 0x30 <= code <= 0x3F else _segment_end(p, pos, n)
    while True:  # tile-parts
        if pos + 2 > n or p[pos] != 0xFF:
            return -1
        if p[pos + 1] == 0xD9:
            return pos + 2
        if p[pos + 1] != 0x90 or pos + 10 > n:
            return -1
        psot = _be32(p + pos + 6)
        if psot == 0:
            at = _segment_end(p, pos, n)
            while at >= 0 and at + 2 <= n and p[at] == 0xFF and p[at + 1] != 0x93:
                at = _segment_end(p, at, n)
            if at < 0 or at + 2 > n or p[at] != 0xFF:
                return -1
            at += 2
            while at + 1 < n:
                if p[at] == 0xFF and p[at + 1] == 0xD9:
                    return at + 2
                at += 1
            return -1
        if psot < 14 or psot > n - pos:
            return -1
        pos += psot


cdef int _span(const uint8_t[::1] data, Py_ssize_t *start, Py_ssize_t *stop) except -1:
    """The codestream inside ``data``: a raw one (SOC first) or the jp2c box of a JP2/JPH file.

    It must hold its EOC marker (:func:`_eoc_end`); what follows EOC is
    padding of any value (PS3.5 A.4) and is left out.
    """
    cdef Py_ssize_t n = data.shape[0], pos = 0, box, header, end
    cdef const uint8_t *p
    start[0] = 0
    stop[0] = n
    if n >= 12 and data[4] == 0x6A and data[5] == 0x50 and data[6] == 0x20 and data[7] == 0x20:
        p = &data[0]
        while True:
            if pos + 8 > n:
                raise ValueError("JP2 file without a codestream box (jp2c)")
            box = _be32(p + pos)
            header = 8
            if box == 1:  # a 64-bit length
                if pos + 16 > n or _be32(p + pos + 8) != 0:
                    raise ValueError("JP2 box too long")
                box = _be32(p + pos + 12)
                header = 16
            elif box == 0:  # to the end of the file
                box = n - pos
            if box < header or box > n - pos:
                raise ValueError("JP2 box length out of range")
            if p[pos + 4] == 0x6A and p[pos + 5] == 0x70 and p[pos + 6] == 0x32 and p[pos + 7] == 0x63:
                start[0] = pos + header
                stop[0] = pos + box
                break
            pos += box
    if stop[0] - start[0] < 4 or data[start[0]] != 0xFF or data[start[0] + 1] != 0x4F:
        raise ValueError("not a JPEG 2000 codestream: no SOC marker (FF4F) at its start")
    end = _eoc_end(&data[start[0]], stop[0] - start[0])
    if end < 0:
        raise ValueError(
            "truncated HTJ2K codestream: no EOC marker (FFD9) at its end"
            " (or a marker segment, or a tile-part by its Psot, runs past the data)"
        )
    stop[0] = start[0] + end
    return 0


cdef list _check_structure(const uint8_t *p, Py_ssize_t n):
    """Refuse what OpenJPH 0.9 would mis-decode or abort on; return the tile-parts' (position, length).

    Main header: every marker segment inside the codestream; COD and QCD
    present; a progression order OpenJPH knows; at most 32 decomposition
    levels; code-blocks of at most 4096 samples; QCD and QCC styles that
    match the wavelet (none for 5/3, expounded for 9/7) with step sizes for
    every level. Tile-parts: each length (Psot) leads to the next SOT or to
    the final EOC, so a tile-part cut short (then closed by a forged EOC) is
    refused: OpenJPH would fill it in without a word. A Psot of 0 (the last
    tile-part, up to EOC) cannot be checked.
    """
    cdef Py_ssize_t pos = 2, length, steps, comps = 0
    cdef Py_ssize_t levels = -1, transform = -1
    cdef uint8_t marker, style
    parts = []  # (position, length) of each tile-part
    quant = []  # (style, number of levels with step sizes) of QCD and each QCC
    while True:  # the main header: marker segments up to the first SOT
        if pos + 4 > n or p[pos] != 0xFF:
            raise ValueError("corrupt HTJ2K main header: no SOT marker where one was expected")
        marker = p[pos + 1]
        if marker == 0x90:
            break
        if 0x30 <= marker <= 0x3F:  # markers without a segment
            pos += 2
            continue
        length = _be16(p + pos + 2)
        if length < 2 or pos + 2 + length > n:
            raise ValueError(f"corrupt HTJ2K main header: marker FF{marker:02X} runs past the end")
        if marker == 0x51 and length >= 38:  # SIZ
            comps = _be16(p + pos + 38)
        elif marker == 0x52:  # COD
            if length < 12:
                raise ValueError("corrupt HTJ2K COD marker segment")
            if p[pos + 5] > 4:
                raise ValueError(f"unknown progression order {p[pos + 5]} in the COD marker segment")
            levels, transform = p[pos + 9], p[pos + 13]
            if levels > 32 or transform > 1:
                raise ValueError("corrupt HTJ2K COD marker segment (levels or wavelet)")
            if p[pos + 10] > 8 or p[pos + 11] > 8 or p[pos + 10] + p[pos + 11] > 8:  # 2**(x + 2) samples
                raise ValueError("corrupt HTJ2K COD marker segment (code-block size)")
            if p[pos + 4] & 1 and length < 12 + levels + 1:  # one precinct size per resolution
                raise ValueError("corrupt HTJ2K COD marker segment (precinct sizes)")
        elif marker == 0x5C or marker == 0x5D:  # QCD, QCC
            steps = length - 3 - (0 if marker == 0x5C else (1 if comps < 257 else 2))
            if steps < 1:
                raise ValueError("corrupt HTJ2K quantisation marker segment")
            style = p[pos + 4 + (0 if marker == 0x5C else (1 if comps < 257 else 2))] & 0x1F
            quant.append((style, (steps - 1) // 3 if style == 0 else (steps // 2 - 1) // 3))
        pos += 2 + length
    if levels < 0 or not quant:
        raise ValueError("corrupt HTJ2K main header: COD and QCD are required")
    for style, steps in quant:
        if style != (0 if transform == 1 else 2) or steps < levels:
            raise ValueError("HTJ2K quantisation does not match the wavelet or the decomposition levels")
    while True:  # tile-parts: SOT, Lsot (10), Isot, Psot, TPsot, TNsot
        if pos + 12 > n or p[pos] != 0xFF or p[pos + 1] != 0x90:
            raise ValueError("corrupt HTJ2K codestream: a tile-part does not start with SOT")
        length = _be32(p + pos + 6)
        if length == 0:  # up to EOC
            length = n - 2 - pos
            if length < 14:
                raise ValueError("corrupt HTJ2K codestream: an empty last tile-part")
        if length < 14 or pos + length > n - 2:
            raise ValueError("truncated HTJ2K codestream: a tile-part runs past the end (Psot)")
        _check_tile_part(p + pos, length)
        parts.append((pos, length))
        pos += length
        if pos == n - 2:
            return parts


cdef int _check_tile_part(const uint8_t *p, Py_ssize_t n) except -1:
    """A tile-part's header holds marker segments up to SOD; its packets hold no marker code but SOP and EPH.

    Code-block data never holds 0xFF followed by a byte above 0x8F (HT and
    Part 1 coders stuff bits to avoid it); OpenJPH 0.9's HT decoder asserts
    on it (MEL) rather than failing, so a pair like this is refused here.
    """
    cdef Py_ssize_t pos = 12
    cdef const uint8_t *hit
    cdef const uint8_t *end = p + n - 1
    while True:
        if pos + 2 > n or p[pos] != 0xFF:
            raise ValueError("corrupt HTJ2K tile-part header: no SOD marker where one was expected")
        if p[pos + 1] == 0x93:
            break
        if pos + 4 > n:
            raise ValueError("corrupt HTJ2K tile-part header")
        pos += 2 + _be16(p + pos + 2)
    hit = p + pos + 2
    while hit < end:
        hit = <const uint8_t *>memchr(hit, 0xFF, end - hit)
        if hit == NULL:
            break
        if hit[1] > 0x8F and hit[1] != 0x91 and hit[1] != 0x92:
            raise ValueError(f"corrupt HTJ2K packet data: marker code FF{hit[1]:02X} inside a tile-part")
        hit += 1
    return 0


#: Bytes of padding after each tile-part (see strict_infile).
cdef Py_ssize_t PAD = 8


cdef bytearray _padded(const uint8_t *p, Py_ssize_t n, list parts, strict_infile *f):
    """The codestream with PAD zero bytes after each tile-part (its Psot grown by PAD), opened in ``f``."""
    cdef Py_ssize_t first = parts[0][0], pos, length, at, grown
    out = bytearray(n + PAD * len(parts))
    cdef uint8_t[::1] o = out
    memcpy(&o[0], p, first)
    at = first
    for pos, length in parts:
        memcpy(&o[at], p + pos, length)
        grown = length + PAD
        o[at + 6], o[at + 7], o[at + 8], o[at + 9] = grown >> 24, (grown >> 16) & 255, (grown >> 8) & 255, grown & 255
        at += length
        memset(&o[at], 0, PAD)
        at += PAD
    memcpy(&o[at], p + n - 2, 2)  # EOC
    f.open(&o[0], o.shape[0])
    at = first
    for pos, length in parts:
        f.add_pad(at + length, PAD)
        at += length + PAD
    return out


def read_header(const uint8_t[::1] data):
    """``(columns, rows, components, precision, signed, reversible, colour_transform)`` of a codestream.

    ``precision`` and ``signed`` are the first component's; ``decode_into``
    refuses codestreams whose components differ in precision, sign or size.
    """
    cdef Py_ssize_t start, stop
    cdef codestream cs
    cdef strict_infile f
    cdef siz_info info
    _span(data, &start, &stop)
    _check_structure(&data[start], stop - start)
    with nogil:
        f.open(&data[start], stop - start)
        cs.read_headers(&f)
        get_siz_info(cs, info)
    return (
        info.width,
        info.height,
        info.components,
        info.precision,
        info.is_signed,
        info.reversible,
        info.colour_transform,
    )


cdef void _store(const int32_t *src, uint8_t *dst, Py_ssize_t n, Py_ssize_t stride, int itemsize,
                 int32_t lo, int32_t hi) noexcept nogil:
    """``n`` samples clipped to [lo, hi], written every ``stride`` items as ``itemsize``-byte integers."""
    cdef Py_ssize_t i
    cdef int32_t v
    if itemsize == 1:
        for i in range(n):
            v = src[i]
            v = lo if v < lo else (hi if v > hi else v)
            (<uint8_t *>dst)[i * stride] = <uint8_t>v
    elif itemsize == 2:
        for i in range(n):
            v = src[i]
            v = lo if v < lo else (hi if v > hi else v)
            (<uint16_t *>dst)[i * stride] = <uint16_t>v
    else:
        for i in range(n):
            v = src[i]
            v = lo if v < lo else (hi if v > hi else v)
            (<uint32_t *>dst)[i * stride] = <uint32_t>v


def decode_into(const uint8_t[::1] data, uint8_t[::1] out, int rows, int columns, int samples, int itemsize):
    """Decode a codestream into ``out``: ``rows x columns x samples`` interleaved ``itemsize``-byte integers.

    The header is checked against the frame shape before anything is
    decoded (ValueError naming the difference). Samples are clipped to the
    codestream's precision and written as their two's complement in
    ``itemsize`` bytes (what numpy's ``astype`` gives). Returns
    ``(precision, signed)``.
    """
    cdef Py_ssize_t start, stop, y, c
    cdef codestream cs
    cdef strict_infile f
    cdef siz_info info
    cdef uint32_t comp_num = 0
    cdef int32_t lo, hi
    cdef line_buf *line
    cdef uint8_t *base
    cdef Py_ssize_t row_bytes
    if itemsize not in (1, 2, 4):
        raise ValueError("itemsize must be 1, 2 or 4")
    if rows < 1 or columns < 1 or samples < 1:
        raise ValueError("the frame shape must be positive")
    row_bytes = <Py_ssize_t>columns * samples * itemsize
    if out.shape[0] != row_bytes * rows:
        raise ValueError(f"destination holds {out.shape[0]} bytes, the frame needs {row_bytes * rows}")
    _span(data, &start, &stop)
    padded = _padded(&data[start], stop - start, _check_structure(&data[start], stop - start), &f)
    with nogil:
        cs.read_headers(&f)
        get_siz_info(cs, info)
    if (info.width, info.height, info.components) != (columns, rows, samples):
        raise ValueError(
            f"the codestream header says {info.height}x{info.width} with {info.components} components, "
            f"the data set says {rows}x{columns} with {samples}"
        )
    if info.odd_component >= 0:
        raise ValueError(
            f"component {info.odd_component} differs from the first in size, subsampling, precision or sign"
        )
    if info.degenerate:
        raise ValueError(
            f"a tile is too small for its {info.levels} decomposition levels: OpenJPH 0.9 cannot decode it"
        )
    if not 1 <= info.precision <= MAX_PRECISION:
        raise ValueError(f"HTJ2K precision {info.precision} is not supported (1 to {MAX_PRECISION} bits)")
    if info.is_signed:
        lo, hi = -(1 << (info.precision - 1)), (1 << (info.precision - 1)) - 1
    else:
        lo, hi = 0, (1 << info.precision) - 1
    with nogil:
        cs.set_planar(False)
        cs.create()
        for y in range(rows):
            base = &out[0] + y * row_bytes
            for c in range(samples):
                line = cs.pull(comp_num)
                if line == NULL or comp_num != <uint32_t>c:
                    with gil:
                        raise ValueError("OpenJPH returned the lines out of order")
                _store(line.i32, base + c * itemsize, columns, samples, itemsize, lo, hi)
    return info.precision, info.is_signed


cdef int _load(const uint8_t *src, int32_t *dst, Py_ssize_t n, Py_ssize_t stride, int itemsize, cbool is_signed,
               int32_t lo, int32_t hi) noexcept nogil:
    """``n`` samples read every ``stride`` items into ``dst``; returns 1 when one lies outside [lo, hi]."""
    cdef Py_ssize_t i
    cdef int32_t v, vmin = lo, vmax = hi
    if itemsize == 1 and is_signed:
        for i in range(n):
            dst[i] = (<const int8_t *>src)[i * stride]
    elif itemsize == 1:
        for i in range(n):
            dst[i] = (<const uint8_t *>src)[i * stride]
    elif itemsize == 2 and is_signed:
        for i in range(n):
            dst[i] = (<const int16_t *>src)[i * stride]
    elif itemsize == 2:
        for i in range(n):
            dst[i] = (<const uint16_t *>src)[i * stride]
    else:  # 32-bit: unsigned values above 2**31 - 1 turn negative and fail the range check
        for i in range(n):
            dst[i] = (<const int32_t *>src)[i * stride]
    for i in range(n):
        v = dst[i]
        vmin = v if v < vmin else vmin
        vmax = v if v > vmax else vmax
    return 1 if vmin < lo or vmax > hi else 0


#: The coarsest base quantisation step encode() takes. OpenJPH 0.9 fails an assertion
#: (``coded_cb->missing_msbs > 0``) and aborts the process at some steps of 0.5 and above
#: (a fork-per-case grid over sizes, levels 0-5 and 8-16 bits found none below 0.5);
#: a step of 1/4 of the range already leaves only a handful of grey levels.
MAX_QSTEP = 0.25


def encode(const uint8_t[::1] raw, int rows, int columns, int samples, int itemsize, int bits_stored,
           bint is_signed, double qstep, int levels):
    """One frame (``rows x columns x samples`` interleaved ``itemsize``-byte integers) as an HTJ2K codestream.

    ``qstep`` 0: reversible 5/3 wavelet (RCT for three samples); otherwise the
    irreversible 9/7 wavelet (ICT) with this base quantisation step, at most
    ``MAX_QSTEP`` (ValueError above). Blocks
    are 64x64, one tile, ``levels`` decompositions, RPCL progression (what
    PS3.5 asks of HTJ2K Lossless RPCL, and OpenJPH's default). Samples must lie in the range of
    ``bits_stored`` bits (ValueError). Returns the codestream (not padded).
    """
    cdef codestream cs
    cdef mem_outfile f
    cdef line_buf *line
    cdef uint32_t next_comp = 0
    cdef Py_ssize_t y, c, n = 0, row_bytes
    cdef int32_t lo, hi
    cdef int bad = 0
    cdef float step = <float>qstep
    if itemsize not in (1, 2, 4) or not 1 <= bits_stored <= min(MAX_PRECISION, 8 * itemsize):
        raise ValueError(f"cannot encode {bits_stored} bits stored in {itemsize}-byte samples")
    if rows < 1 or columns < 1 or not 1 <= samples <= 16384:
        raise ValueError("the frame shape must be positive")
    row_bytes = <Py_ssize_t>columns * samples * itemsize
    if raw.shape[0] != row_bytes * rows:
        raise ValueError(f"the frame holds {raw.shape[0]} bytes, its shape needs {row_bytes * rows}")
    if not 0 <= levels <= 32:
        raise ValueError("levels must lie in 0..32")
    if not (qstep == 0 or step > 0):
        raise ValueError("qstep must be 0 (lossless) or positive")
    if qstep > MAX_QSTEP:
        raise ValueError(f"quantisation steps above {MAX_QSTEP} of the sample range are refused:"
                         " OpenJPH 0.9's block coder aborts on some of them (from 0.5 up)")
    if is_signed:
        lo, hi = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    else:
        lo, hi = 0, (1 << bits_stored) - 1
    with nogil:
        set_params(cs, columns, rows, samples, bits_stored, is_signed, levels, step)
        cs.set_planar(False)
        f.open(65536)
        cs.write_headers(&f)
        line = cs.exchange(NULL, next_comp)
        for y in range(rows):
            for c in range(samples):
                bad |= _load(&raw[0] + y * row_bytes + c * itemsize, line.i32, columns, samples, itemsize,
                             is_signed, lo, hi)
                line = cs.exchange(line, next_comp)
        if not bad:
            cs.flush()
            n = f.tell()
    if bad:
        raise ValueError(f"pixel values lie outside Bits Stored ({bits_stored}): HTJ2K cannot keep them")
    return (<const char *>f.get_data())[:n]
