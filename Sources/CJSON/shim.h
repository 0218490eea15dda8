#ifndef QWENFT_CJSON_SHIM_H
#define QWENFT_CJSON_SHIM_H
#include <json.h>
#endif
