/* SPDX-License-Identifier: MIT */
/*
 * json.h: a small JSON reader for the tessera tool: parses one value
 * (RFC 8259: objects, arrays, strings with every escape, numbers, true,
 * false, null) into a tree, and finds members by name.  It reads the
 * allocator's snapshots, so it needs no writer and no streaming.
 *
 * The tree owns all its memory (malloc) and is freed with json_free.
 * Numbers keep their double value and, when they are plain non-negative
 * integers that fit, their exact uint64_t value, because byte counts above
 * 2^53 would lose their low digits in a double.  Nesting deeper than
 * JSON_MAX_DEPTH is refused rather than recursing without bound.
 */
#ifndef TS_TOOL_JSON_H
#define TS_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum json_type_e {
  JSON_NULL,
  JSON_FALSE,
  JSON_TRUE,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_type_e;

typedef struct json_s json_t;
struct json_s {
  json_type_e type;
  double number;        /* JSON_NUMBER */
  bool is_u64;          /* JSON_NUMBER: a non-negative integer that fits u64 */
  uint64_t u64;         /* its exact value when is_u64 */
  char *string;         /* JSON_STRING: NUL-terminated UTF-8 (may hold NULs: use string_len) */
  size_t string_len;
  size_t count;         /* JSON_ARRAY: items; JSON_OBJECT: members */
  json_t *items;        /* count values */
  char **keys;          /* JSON_OBJECT: count keys, NUL-terminated */
};

/* Where and why parsing stopped. */
typedef struct json_error_s {
  size_t line, column;  /* 1-based; column counts bytes */
  size_t offset;        /* bytes from the start of the text */
  char message[128];
} json_error_t;

/* Parses the first JSON value of text[0 .. len - 1] (leading white space
 * skipped).  On success returns the tree and sets *end to the offset just
 * past the value (trailing text is the caller's business); on failure
 * returns NULL and fills *err (the position is that of the offending byte;
 * out of memory is reported the same way).  end and err may be NULL. */
json_t *json_parse(const char *text, size_t len, size_t *end, json_error_t *err);

/* Frees a tree from json_parse (NULL is fine). */
void json_free(json_t *v);

/* The member called key of an object, or NULL (also when v is not an
 * object).  With repeated keys the last one wins, as in most readers. */
const json_t *json_get(const json_t *v, const char *key);

/* "null", "false", "true", "a number", "a string", "an array", "an object". */
const char *json_type_name(json_type_e type);

#endif /* TS_TOOL_JSON_H */
