#include "tessel/Support/Error.h"
