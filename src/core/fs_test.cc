#include "core/fs.h"

#include <sys/stat.h>

#include "gtest/gtest.h"

namespace nightshift {
namespace {

TEST(Fs, WriteAtomicThenRead) {
  auto dir = MakeTempDir("ns-fs-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto path = *dir / "f.txt";
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two").ok());
  EXPECT_EQ(*ReadFile(path), "two");
  RemoveTreeQuietly(*dir);
}

TEST(Fs, CreateExclusiveKeepsExistingContentAndMode) {
  auto dir = MakeTempDir("ns-fs-test");
  ASSERT_TRUE(dir.ok());
  auto path = *dir / "secret";
  ASSERT_TRUE(CreateFileExclusive(path, "s3cret", 0600).ok());
  Status again = CreateFileExclusive(path, "other", 0600);
  EXPECT_TRUE(IsAlreadyExists(again)) << again;
  EXPECT_EQ(*ReadFile(path), "s3cret");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RemoveTreeQuietly(*dir);
}

TEST(Fs, ReadMissingFileNamesThePath) {
  auto r = ReadFile("/nonexistent/nightshift");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsNotFound(r.status()));
  EXPECT_NE(r.status().message().find("/nonexistent/nightshift"), std::string::npos);
}

TEST(Fs, RandomHexIsRandom) {
  EXPECT_EQ(RandomHex(16).size(), 32u);
  EXPECT_NE(RandomHex(16), RandomHex(16));
}

}  // namespace
}  // namespace nightshift
