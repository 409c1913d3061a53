/* SPDX-License-Identifier: MIT */
/*
 * json.c: the recursive-descent JSON reader behind json.h.  One function
 * per grammar rule of RFC 8259 (value, object, array, string, number,
 * literal); each takes the parser state, leaves pos just past what it
 * read, and returns false after recording the first error.  Arrays and
 * objects grow their item vectors by doubling.  Bytes of 0x80 and above
 * inside strings are copied as they are (not checked to be UTF-8): the
 * tool escapes what it prints, so a bad byte costs a replacement character
 * rather than the whole snapshot.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser_s {
  const char *text;
  size_t len, pos;
  unsigned depth;
  json_error_t *err;
  bool failed;
} parser_t;

/* Records the first error, at byte offset at. */
static bool fail_at(parser_t *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail_at(parser_t *p, size_t at, const char *fmt, ...) {
  if (p->failed) return false;
  p->failed = true;
  if (!p->err) return false;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at && i < p->len; i++) {
    if (p->text[i] == '\n') line++, col = 1;
    else col++;
  }
  p->err->line = line;
  p->err->column = col;
  p->err->offset = at;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
  va_end(ap);
  return false;
}

/* "'x'", "byte 0x01" or "end of input" for the byte at pos. */
static const char *describe(const parser_t *p, size_t at, char buf[16]) {
  if (at >= p->len) return "end of input";
  unsigned char c = (unsigned char)p->text[at];
  if (c >= 0x20 && c < 0x7f) snprintf(buf, 16, "'%c'", c);
  else snprintf(buf, 16, "byte 0x%02x", c);
  return buf;
}

static bool unexpected(parser_t *p, const char *what) {
  char buf[16];
  return fail_at(p, p->pos, "%s, found %s", what, describe(p, p->pos, buf));
}

static void skip_space(parser_t *p) {
  while (p->pos < p->len) {
    char c = p->text[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* ---- a growable byte buffer for strings ---- */

typedef struct buf_s {
  char *data;
  size_t len, cap;
} buf_t;

static bool buf_put(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->len + n + 1) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = 0;
  return true;
}

/* Appends code point cp as UTF-8. */
static bool buf_put_utf8(buf_t *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
  } else {
    u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
  }
  return buf_put(b, u, n);
}

/* ---- the grammar ---- */

static bool parse_value(parser_t *p, json_t *out);

/* Frees what v owns, not v itself (items live inside their parent's vector). */
static void free_children(json_t *v) {
  for (size_t i = 0; i < v->count; i++) {
    free_children(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->string);
}

/* Four hex digits after \u at pos; -1 if they are not there. */
static long hex4(parser_t *p) {
  if (p->len - p->pos < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->text[p->pos + (size_t)i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  p->pos += 4;
  return v;
}

/* A string at pos (which holds the opening quote) into *s, *slen. */
static bool parse_string(parser_t *p, char **s, size_t *slen) {
  buf_t b = {NULL, 0, 0};
  size_t start = p->pos++;
  if (!buf_put(&b, "", 0)) return fail_at(p, start, "out of memory");
  for (;;) {
    if (p->pos >= p->len) {
      free(b.data);
      return fail_at(p, start, "unterminated string");
    }
    size_t run = p->pos;
    while (p->pos < p->len && p->text[p->pos] != '"' && p->text[p->pos] != '\\' &&
           (unsigned char)p->text[p->pos] >= 0x20)
      p->pos++;
    if (!buf_put(&b, p->text + run, p->pos - run)) goto oom;
    if (p->pos >= p->len) continue;
    unsigned char c = (unsigned char)p->text[p->pos];
    if (c == '"') {
      p->pos++;
      break;
    }
    if (c < 0x20) {
      free(b.data);
      char buf[16];
      return fail_at(p, p->pos, "control character (%s) in a string: it must be escaped", describe(p, p->pos, buf));
    }
    /* a backslash */
    size_t esc = p->pos++;
    if (p->pos >= p->len) continue;
    char e = p->text[p->pos++], one = 0;
    switch (e) {
      case '"': one = '"'; break;
      case '\\': one = '\\'; break;
      case '/': one = '/'; break;
      case 'b': one = '\b'; break;
      case 'f': one = '\f'; break;
      case 'n': one = '\n'; break;
      case 'r': one = '\r'; break;
      case 't': one = '\t'; break;
      case 'u': {
        long cp = hex4(p);
        if (cp < 0) {
          free(b.data);
          return fail_at(p, esc, "\\u must be followed by four hex digits");
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) {
          free(b.data);
          return fail_at(p, esc, "lone low surrogate in a \\u escape");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          long lo = -1;
          if (p->len - p->pos >= 2 && p->text[p->pos] == '\\' && p->text[p->pos + 1] == 'u') {
            p->pos += 2;
            lo = hex4(p);
          }
          if (lo < 0xdc00 || lo > 0xdfff) {
            free(b.data);
            return fail_at(p, esc, "high surrogate not followed by a low one in a \\u escape");
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (!buf_put_utf8(&b, (unsigned long)cp)) goto oom;
        continue;
      }
      default: {
        free(b.data);
        char buf[16];
        return fail_at(p, esc, "invalid escape in a string: backslash then %s", describe(p, esc + 1, buf));
      }
    }
    if (!buf_put(&b, &one, 1)) goto oom;
  }
  *s = b.data;
  *slen = b.len;
  return true;
oom:
  free(b.data);
  return fail_at(p, start, "out of memory");
}

static bool is_digit(const parser_t *p, size_t at) {
  return at < p->len && p->text[at] >= '0' && p->text[at] <= '9';
}

static bool parse_number(parser_t *p, json_t *out) {
  size_t start = p->pos, i = p->pos;
  bool plain = true; /* no sign, fraction or exponent */
  if (i < p->len && p->text[i] == '-') i++, plain = false;
  if (!is_digit(p, i)) return unexpected(p, "expected a value");
  if (p->text[i] == '0') {
    i++;
    if (is_digit(p, i)) return fail_at(p, start, "invalid number: leading zero");
  } else {
    while (is_digit(p, i)) i++;
  }
  if (i < p->len && p->text[i] == '.') {
    plain = false;
    if (!is_digit(p, ++i)) return fail_at(p, start, "invalid number: no digit after the decimal point");
    while (is_digit(p, i)) i++;
  }
  if (i < p->len && (p->text[i] == 'e' || p->text[i] == 'E')) {
    plain = false;
    i++;
    if (i < p->len && (p->text[i] == '+' || p->text[i] == '-')) i++;
    if (!is_digit(p, i)) return fail_at(p, start, "invalid number: no digit in the exponent");
    while (is_digit(p, i)) i++;
  }
  size_t n = i - start;
  char small[64], *copy = n < sizeof small ? small : malloc(n + 1);
  if (!copy) return fail_at(p, start, "out of memory");
  memcpy(copy, p->text + start, n);
  copy[n] = 0;
  out->type = JSON_NUMBER;
  out->number = strtod(copy, NULL); /* the grammar above is a subset of strtod's */
  if (copy != small) free(copy);
  out->is_u64 = plain;
  out->u64 = 0;
  for (size_t k = start; plain && k < i; k++) {
    unsigned d = (unsigned)(p->text[k] - '0');
    if (out->u64 > (UINT64_MAX - d) / 10) out->is_u64 = false;
    else out->u64 = out->u64 * 10 + d;
  }
  if (!out->is_u64) out->u64 = 0;
  p->pos = i;
  return true;
}

static bool parse_literal(parser_t *p, json_t *out, const char *word, json_type_e type) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return unexpected(p, "expected a value");
  p->pos += n;
  out->type = type;
  return true;
}

/* Appends *v to the vector of *out (count items), doubling it as needed. */
static bool push_item(json_t *out, size_t *cap, const json_t *v, char *key) {
  if (out->count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    json_t *items = realloc(out->items, ncap * sizeof *items);
    if (!items) return false;
    out->items = items;
    if (out->type == JSON_OBJECT) {
      char **keys = realloc(out->keys, ncap * sizeof *keys);
      if (!keys) return false;
      out->keys = keys;
    }
    *cap = ncap;
  }
  out->items[out->count] = *v;
  if (out->type == JSON_OBJECT) out->keys[out->count] = key;
  out->count++;
  return true;
}

/* After an array's or object's item: 1 past a ',' (another item follows),
 * 0 past the closing character, -1 on anything else (nothing consumed). */
static int after_item(parser_t *p, char close) {
  skip_space(p);
  if (p->pos < p->len && p->text[p->pos] == ',') {
    p->pos++;
    return 1;
  }
  if (p->pos < p->len && p->text[p->pos] == close) {
    p->pos++;
    return 0;
  }
  return -1;
}

static bool parse_array(parser_t *p, json_t *out) {
  size_t cap = 0;
  out->type = JSON_ARRAY;
  p->pos++; /* '[' */
  skip_space(p);
  if (p->pos < p->len && p->text[p->pos] == ']') {
    p->pos++;
    return true;
  }
  for (;;) {
    json_t item;
    size_t at = p->pos;
    if (!parse_value(p, &item)) return false;
    if (!push_item(out, &cap, &item, NULL)) {
      free_children(&item);
      return fail_at(p, at, "out of memory");
    }
    int next = after_item(p, ']');
    if (next < 0) return unexpected(p, "expected ',' or ']' in an array");
    if (next == 0) return true;
  }
}

static bool parse_object(parser_t *p, json_t *out) {
  size_t cap = 0;
  out->type = JSON_OBJECT;
  p->pos++; /* '{' */
  skip_space(p);
  if (p->pos < p->len && p->text[p->pos] == '}') {
    p->pos++;
    return true;
  }
  for (;;) {
    skip_space(p);
    if (p->pos >= p->len || p->text[p->pos] != '"')
      return unexpected(p, "expected a member name (a string) in an object");
    char *key;
    size_t klen, at = p->pos;
    if (!parse_string(p, &key, &klen)) return false;
    skip_space(p);
    if (p->pos >= p->len || p->text[p->pos] != ':') {
      free(key);
      return unexpected(p, "expected ':' after a member name");
    }
    p->pos++;
    json_t item;
    if (!parse_value(p, &item)) {
      free(key);
      return false;
    }
    if (!push_item(out, &cap, &item, key)) {
      free(key);
      free_children(&item);
      return fail_at(p, at, "out of memory");
    }
    int next = after_item(p, '}');
    if (next < 0) return unexpected(p, "expected ',' or '}' in an object");
    if (next == 0) return true;
  }
}

/* Any value at pos (after white space) into *out; on failure whatever was
 * built is freed and *out is left zeroed. */
static bool parse_value(parser_t *p, json_t *out) {
  memset(out, 0, sizeof *out);
  skip_space(p);
  if (p->pos >= p->len) return unexpected(p, "expected a value");
  bool ok;
  switch (p->text[p->pos]) {
    case '{':
    case '[':
      if (p->depth >= JSON_MAX_DEPTH) return fail_at(p, p->pos, "nesting deeper than 64 levels");
      p->depth++;
      ok = p->text[p->pos] == '{' ? parse_object(p, out) : parse_array(p, out);
      p->depth--;
      break;
    case '"':
      out->type = JSON_STRING;
      ok = parse_string(p, &out->string, &out->string_len);
      break;
    case 't': ok = parse_literal(p, out, "true", JSON_TRUE); break;
    case 'f': ok = parse_literal(p, out, "false", JSON_FALSE); break;
    case 'n': ok = parse_literal(p, out, "null", JSON_NULL); break;
    default: ok = parse_number(p, out); break;
  }
  if (!ok) {
    free_children(out);
    memset(out, 0, sizeof *out);
  }
  return ok;
}

json_t *json_parse(const char *text, size_t len, size_t *end, json_error_t *err) {
  parser_t p = {text, len, 0, 0, err, false};
  json_t *v = malloc(sizeof *v);
  if (!v) {
    fail_at(&p, 0, "out of memory");
    return NULL;
  }
  if (!parse_value(&p, v)) {
    free(v);
    return NULL;
  }
  if (end) *end = p.pos;
  return v;
}

void json_free(json_t *v) {
  if (!v) return;
  free_children(v);
  free(v);
}

const json_t *json_get(const json_t *v, const char *key) {
  if (!v || v->type != JSON_OBJECT) return NULL;
  for (size_t i = v->count; i-- > 0;)
    if (strcmp(v->keys[i], key) == 0) return &v->items[i];
  return NULL;
}

const char *json_type_name(json_type_e type) {
  switch (type) {
    case JSON_NULL: return "null";
    case JSON_FALSE: return "false";
    case JSON_TRUE: return "true";
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
  }
  return "?";
}
