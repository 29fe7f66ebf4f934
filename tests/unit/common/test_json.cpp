// JSON string literals as best-hsectl --json and the admin socket write them.
#include <gtest/gtest.h>

#include <string>

#include "common/json.h"

TEST(JsonString, EscapesPerRfc8259) {
    EXPECT_EQ(best::jsonString("plain"), "\"plain\"");
    EXPECT_EQ(best::jsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(best::jsonString("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
    EXPECT_EQ(best::jsonString(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
    EXPECT_EQ(best::jsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 passes through
}
