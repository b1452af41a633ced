// Reading through layers as the host does: the overlay's rules, and never a symlink.

#include "workspace/layered_tree.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace nightshift::workspace {
namespace {

class LayeredTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    top_ = dir_.path() / "top";
    bottom_ = dir_.path() / "bottom";
    std::filesystem::create_directories(top_);
    std::filesystem::create_directories(bottom_);
  }
  static void Write(const std::filesystem::path& path, const std::string& content) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << content;
  }
  StatusOr<std::string> Read(const std::string& relative) {
    return ReadThroughLayers({top_, bottom_}, relative);
  }

  testing::TempDir dir_;
  std::filesystem::path top_, bottom_;
};

TEST_F(LayeredTreeTest, TheTopmostLayerWins) {
  Write(bottom_ / "a/b.txt", "bottom");
  Write(bottom_ / "a/c.txt", "only below");
  Write(top_ / "a/b.txt", "top");
  EXPECT_EQ(*Read("a/b.txt"), "top");
  EXPECT_EQ(*Read("a/c.txt"), "only below");
  EXPECT_EQ(Read("a/none").status().code(), StatusCode::kNotFound);
}

// The attack: `.devcontainer -> /some/host/dir` in a checkout made a follow-up run execute a
// root-only host file as its setup.
TEST_F(LayeredTreeTest, ASymlinkOnTheWayIsRefusedNotFollowed) {
  const auto host = dir_.path() / "host-secret";
  Write(host / "devcontainer.json", R"({"postCreateCommand": "touch /pwned"})");
  ASSERT_EQ(::symlink(host.c_str(), (bottom_ / ".devcontainer").c_str()), 0);
  auto through_dir = Read(".devcontainer/devcontainer.json");
  EXPECT_EQ(through_dir.status().code(), StatusCode::kInvalidArgument) << through_dir.status();
  EXPECT_NE(through_dir.status().message().find("symlink"), std::string::npos);
  // A symlink as the file itself, relative or absolute.
  ASSERT_EQ(::symlink("/etc/passwd", (bottom_ / "passwd").c_str()), 0);
  ASSERT_EQ(::symlink("../host-secret/devcontainer.json", (bottom_ / "rel").c_str()), 0);
  EXPECT_EQ(Read("passwd").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Read("rel").status().code(), StatusCode::kInvalidArgument);
  // In an upper layer over a real directory below: the symlink above still decides.
  Write(bottom_ / "conf/x", "below");
  ASSERT_EQ(::symlink(host.c_str(), (top_ / "conf").c_str()), 0);
  EXPECT_EQ(Read("conf/x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LayeredTreeTest, OnlyPlainRelativePaths) {
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "./a"}) {
    EXPECT_EQ(Read(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(LayeredTreeTest, AFifoIsNotARegularFileAndDoesNotHang) {
  ASSERT_EQ(::mkfifo((top_ / "fifo").c_str(), 0644), 0);
  EXPECT_EQ(Read("fifo").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LayeredTreeTest, ReadsAreBounded) {
  Write(top_ / "big", std::string(100, 'x'));
  EXPECT_EQ(ReadThroughLayers({top_}, "big", 99).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReadThroughLayers({top_}, "big", 100).ok());
}

TEST_F(LayeredTreeTest, AFileAboveHidesADirectoryBelow) {
  Write(bottom_ / "d/x", "x");
  Write(top_ / "d", "file");
  EXPECT_EQ(Read("d/x").status().code(), StatusCode::kInvalidArgument);
  auto entry = LayerStack::Open({top_, bottom_})->Lookup("d");
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->type, EntryType::kFile);
  EXPECT_EQ(entry->layer, 0u);
}

// Whiteouts and opaque directories take root to make (mknod, trusted.* xattrs).
TEST_F(LayeredTreeTest, WhiteoutsAndOpaqueDirectoriesHideWhatIsBelow) {
  if (::geteuid() != 0) GTEST_SKIP() << "whiteouts and trusted xattrs need root";
  Write(bottom_ / "gone.txt", "x");
  Write(bottom_ / "dir/old.txt", "old");
  Write(bottom_ / "dir2/kept.txt", "kept");
  ASSERT_EQ(::mknod((top_ / "gone.txt").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  Write(top_ / "dir/new.txt", "new");
  ASSERT_EQ(::setxattr((top_ / "dir").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  Write(top_ / "dir2/more.txt", "more");  // not opaque: merged
  EXPECT_EQ(Read("gone.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Read("dir/old.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*Read("dir/new.txt"), "new");
  EXPECT_EQ(*Read("dir2/kept.txt"), "kept");
  EXPECT_EQ(*Read("dir2/more.txt"), "more");
  // A renamed-directory redirect is never what the platform mounts: refused.
  Write(top_ / "moved/x", "x");
  ASSERT_EQ(::setxattr((top_ / "moved").c_str(), "trusted.overlay.redirect", "/dir2", 5, 0), 0);
  EXPECT_EQ(Read("moved/x").status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace nightshift::workspace
