// Log level names, as the configuration files and --log-level options spell them.
#include <gtest/gtest.h>

#include "common/log.h"

using namespace best;

TEST(LogLevel, EveryNameParses) {
    EXPECT_EQ(log::parseLevel("debug"), log::Level::debug);
    EXPECT_EQ(log::parseLevel("info"), log::Level::info);
    EXPECT_EQ(log::parseLevel("notice"), log::Level::notice);
    EXPECT_EQ(log::parseLevel("warning"), log::Level::warning);
    EXPECT_EQ(log::parseLevel("error"), log::Level::error);
}

TEST(LogLevel, OtherNamesDoNot) {
    EXPECT_FALSE(log::parseLevel(""));
    EXPECT_FALSE(log::parseLevel("Debug"));
    EXPECT_FALSE(log::parseLevel("warn"));
    EXPECT_FALSE(log::parseLevel("loud"));
}
