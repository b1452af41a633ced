#include "core/secrets.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <ostream>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace nightshift {

void PrintTo(const SecretMatch& m, std::ostream* os) {
  *os << "{" << m.offset << ", " << m.length << ", " << m.kind << "}";
}

namespace {

using ::testing::TestWithParam;

constexpr std::string_view kUpperDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kAlnum =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kAlnumUnderscore =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
constexpr std::string_view kWord =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
constexpr std::string_view kAlnumDash =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";
constexpr std::string_view kFillerText =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_- \n.,:=\"'";
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBearerChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/-";

// Examples of every shape, each exactly what a match should cover.
constexpr std::string_view kAwsKeyId = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kAwsSessionKeyId = "ASIAY34FZKBOKMUTVV7A";
constexpr std::string_view kAwsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kGithub = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kGithubPat =
    "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
constexpr std::string_view kGitlab = "glpat-xYz123_abcDEF-ghij456";
constexpr std::string_view kSlack = "xoxb-123456789012-abcdefABCDEF";
constexpr std::string_view kOpenAi = "sk-abcdefghij0123456789ABCDEFGH";
constexpr std::string_view kOpenAiProject = "sk-proj-Ab3dEf_Gh1-jKlMnOpQrStUv";
constexpr std::string_view kAnthropic = "sk-ant-api03-abcdefghijklmnop_QRSTUV-0123456789xyz";
constexpr std::string_view kStripe = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
constexpr std::string_view kStripeRestricted = "rk_live_51H8abcdefGHIJKLmnopQRST";
constexpr std::string_view kNpm = "npm_abcdefghijklmnopqrstuvwxyzABCDEF0123";
constexpr std::string_view kGoogle = "AIzaSyA-1234567890abcdefghijklmnopqrst_";
constexpr std::string_view kBearer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl==";

static_assert(kAwsKeyId.size() == 20 && kAwsSessionKeyId.size() == 20);
static_assert(kAwsSecret.size() == 40 && kNpm.size() == 4 + 36 && kGoogle.size() == 4 + 35);

constexpr std::string_view kRsaKey =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi+ltZ2KxJ1fr3aDz6K2h4ks0Ri\n"
    "n1qYQ2mRUNCb1ZBxtRpCvyDbZvNnv1bNkxmt7tWE4WQkIRl6Gk2qV3W0yX+bc9O=\n"
    "-----END RSA PRIVATE KEY-----";

std::vector<SecretMatch> Find(std::string_view text) { return FindSecrets(text); }

// In order of offset, non-overlapping, inside the text.
void ExpectWellFormed(std::string_view text, const std::vector<SecretMatch>& found) {
  size_t end = 0;
  for (const SecretMatch& m : found) {
    EXPECT_GE(m.offset, end) << "overlapping or out of order";
    EXPECT_GT(m.length, 0u);
    EXPECT_LE(m.offset + m.length, text.size());
    EXPECT_FALSE(m.kind.empty());
    end = m.offset + m.length;
  }
}

struct ShapeCase {
  std::string name;
  std::string before;  // text before the secret
  std::string secret;
  std::string after;
  std::string_view kind;
};

void PrintTo(const ShapeCase& c, std::ostream* os) { *os << c.name; }

class EachShape : public TestWithParam<ShapeCase> {};

TEST_P(EachShape, IsFoundWithItsOffsetLengthAndKind) {
  const ShapeCase& c = GetParam();
  const std::string text = c.before + c.secret + c.after;
  EXPECT_EQ(Find(text), (std::vector<SecretMatch>{{c.before.size(), c.secret.size(), c.kind}}))
      << text;
}

std::string S(std::string_view s) { return std::string(s); }

INSTANTIATE_TEST_SUITE_P(
    FindSecrets, EachShape,
    ::testing::Values(
        ShapeCase{"AwsAccessKeyId", "AWS_ACCESS_KEY_ID=", S(kAwsKeyId), "\n", "aws-access-key-id"},
        ShapeCase{"AwsSessionKeyId", "key: ", S(kAwsSessionKeyId), "", "aws-access-key-id"},
        ShapeCase{"AwsKeyIdBeforeLowercase", "", S(kAwsKeyId), "abc", "aws-access-key-id"},
        ShapeCase{"AwsSecretAfterEquals", "AWS_SECRET_ACCESS_KEY=", S(kAwsSecret), "\n",
                  "aws-secret-access-key"},
        ShapeCase{"AwsSecretQuotedAfterColon", "{\"aws_secret_access_key\" : \"", S(kAwsSecret),
                  "\"}", "aws-secret-access-key"},
        ShapeCase{"AwsSecretIniWithPrefix", "[default]\nmy_Aws_Secret_Access_Key = ", S(kAwsSecret),
                  "\n", "aws-secret-access-key"},
        ShapeCase{"GithubToken", "token ", S(kGithub), " ok", "github-token"},
        ShapeCase{"GithubServerToken", "(", "ghs_" + std::string(36, 'Z'), ")", "github-token"},
        ShapeCase{"GithubFineGrained", "GH=", S(kGithubPat), "", "github-token"},
        ShapeCase{"Gitlab", "'", S(kGitlab), "'", "gitlab-token"},
        ShapeCase{"Slack", "slack: ", S(kSlack), ".", "slack-token"},
        ShapeCase{"OpenAi", "OPENAI_API_KEY=", S(kOpenAi), "\n", "openai-api-key"},
        ShapeCase{"OpenAiProject", "\"", S(kOpenAiProject), "\"", "openai-api-key"},
        ShapeCase{"Anthropic", "x-api-key: ", S(kAnthropic), "\r\n", "anthropic-api-key"},
        ShapeCase{"Stripe", "stripe=", S(kStripe), ";", "stripe-key"},
        ShapeCase{"StripeRestricted", "", S(kStripeRestricted), "", "stripe-key"},
        ShapeCase{"Npm", "//registry.npmjs.org/:_authToken=", S(kNpm), "\n", "npm-token"},
        ShapeCase{"Google", "key=", S(kGoogle), "&q=1", "google-api-key"},
        ShapeCase{"BearerHeader", "Authorization: Bearer ", S(kBearer), "\r\n", "bearer-token"},
        ShapeCase{"BearerAnyCaseAndSpacing", "AUTHORIZATION:bearer\t", S(kBearer), "",
                  "bearer-token"},
        ShapeCase{"BearerInJson", "{\"Authorization\": \"Bearer ", S(kBearer), "\"}",
                  "bearer-token"},
        ShapeCase{"ProxyAuthorization", "Proxy-Authorization: Bearer ", "abcdefghijklmnop", "",
                  "bearer-token"},
        ShapeCase{"RsaPrivateKey", "key:\n", S(kRsaKey), "\nmore text", "private-key"},
        ShapeCase{"BarePrivateKey", "",
                  "-----BEGIN PRIVATE KEY-----\nMIIEvQ==\n-----END PRIVATE KEY-----", "\n",
                  "private-key"},
        ShapeCase{"EcPrivateKeyInADiff", "+",
                  "-----BEGIN EC PRIVATE KEY-----\n+MHcCAQEE\n+-----END EC PRIVATE KEY-----", "\n",
                  "private-key"},
        ShapeCase{"OpensshPrivateKey", "",
                  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA=\n"
                  "-----END OPENSSH PRIVATE KEY-----",
                  "", "private-key"},
        ShapeCase{"EncryptedPrivateKey", "",
                  "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkq\n"
                  "-----END ENCRYPTED PRIVATE KEY-----",
                  "", "private-key"},
        ShapeCase{"PgpPrivateKeyBlock", "",
                  "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0=\n=abcd\n"
                  "-----END PGP PRIVATE KEY BLOCK-----",
                  "\n", "private-key"}),
    [](const ::testing::TestParamInfo<ShapeCase>& info) { return info.param.name; });

TEST(FindSecrets, TokensOnlyStartAtABoundary) {
  for (const std::string& text : std::vector<std::string>{
           std::string("disk-cache-configuration-value-0123456789"),
           "mask-0123456789abcdefghijklmnop",
           "task_sk-0123456789abcdefghijklmnop",
           "desk-0123456789abcdefghijklmnop",
           "_" + S(kOpenAi),
           "-" + S(kOpenAi),
           "x" + S(kAwsKeyId),
           "9" + S(kAwsKeyId),
           "my" + S(kGithub),
           "a_" + S(kGithubPat),
           "x" + S(kGitlab),
           "x" + S(kSlack),
           "x" + S(kStripe),
           "x" + S(kNpm),
           "x" + S(kGoogle),
           "BASE64STRINGAKIAIOSFODNN7EXAMPLEXYZ",
       }) {
    EXPECT_EQ(Find(text), std::vector<SecretMatch>{}) << text;
  }
}

TEST(FindSecrets, BodiesMustHaveTheirShape) {
  for (const std::string& text : std::vector<std::string>{
           std::string("AKIA") + "IOSFODNN7EXAMPL",    // 15, not 16
           std::string("AKIA") + "IOSFODNN7EXAMPLEX",  // 17: not an access key id
           std::string("akiaIOSFODNN7EXAMPLE"),        // prefixes are case-sensitive
           std::string("GHP_abcdefghijklmnopqrstuvwxyz0123456789"),
           std::string("ghx_abcdefghijklmnopqrstuvwxyz0123456789"),
           std::string("ghp_abcdefghijklmnopqrstuvwxyz012"),   // 29
           std::string("github_pat_") + std::string(39, 'a'),  // 39
           std::string("glpat-") + std::string(19, 'a'),
           std::string("xoxc-1234567890"),
           std::string("xoxb-12345678"),
           std::string("sk-this-is-a-long-kebab-case-identifier"),  // no digit
           std::string("sk-ant-abcdefghijklmnopqrstuvwxyz"),        // no digit
           std::string("sk-0123456789012345678"),                   // 19
           std::string("sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
           std::string("npm_") + std::string(35, 'a'),
           std::string("AIza") + std::string(34, 'a'),
           std::string("aws_secret_access_key = ") + std::string(39, 'a'),
           std::string("aws_secret_access_key ") + S(kAwsSecret),  // no = or :
           std::string("Authorization: Bearer abcdefghijklmno"),   // 15
           std::string("Authorization: Basic ") + S(kBearer),
           std::string("Authorization: Bearer") + S(kBearer),  // no space
           std::string("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"),
           std::string("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
           std::string("-----BEGIN rsa private key-----\nMIIB\n"),
           std::string("-----BEGIN RSA PRIVATE KEY----\nMIIB\n"),
       }) {
    EXPECT_EQ(Find(text), std::vector<SecretMatch>{}) << text;
  }
}

TEST(FindSecrets, ExactLengthShapesTakeTheirLength) {
  // As the regexes did: a Google key or npm token is its fixed length, even if more follows.
  const std::string google = S(kGoogle) + "extra";
  EXPECT_EQ(Find(google), (std::vector<SecretMatch>{{0, kGoogle.size(), "google-api-key"}}));
  const std::string npm = S(kNpm) + "XYZ";
  EXPECT_EQ(Find(npm), (std::vector<SecretMatch>{{0, kNpm.size(), "npm-token"}}));
}

TEST(FindSecrets, AnEscapedNewlineIsABoundary) {
  const std::string json = R"({"env": "A=1\n)" + S(kGithub) + R"(\tB=2"})";
  const size_t at = json.find("ghp_");
  EXPECT_EQ(Find(json), (std::vector<SecretMatch>{{at, kGithub.size(), "github-token"}}));
}

TEST(FindSecrets, APrivateKeyBlockSpansToItsEnd) {
  const std::string text = "config:\n" + S(kRsaKey) + "\nuser: bob\n" + S(kRsaKey) + "\n";
  const size_t first = text.find("-----BEGIN");
  const size_t second = text.find("-----BEGIN", first + 1);
  EXPECT_EQ(Find(text), (std::vector<SecretMatch>{{first, kRsaKey.size(), "private-key"},
                                                  {second, kRsaKey.size(), "private-key"}}));
  // Tokens inside a block belong to the block.
  const std::string with_token =
      "-----BEGIN PRIVATE KEY-----\n" + S(kGithub) + "\n-----END PRIVATE KEY-----\n" + S(kGithub);
  const size_t token = with_token.rfind("ghp_");
  EXPECT_EQ(Find(with_token), (std::vector<SecretMatch>{{0, token - 1, "private-key"},
                                                        {token, kGithub.size(), "github-token"}}));
}

TEST(FindSecrets, APrivateKeyWithEscapedNewlinesInJson) {
  std::string key = S(kRsaKey);
  for (size_t at = key.find('\n'); at != std::string::npos; at = key.find('\n', at)) {
    key.replace(at, 1, "\\n");
  }
  const std::string json = R"({"type": "service_account", "private_key": ")" + key +
                           R"(\n", "client_email": "a@b.iam.gserviceaccount.com"})";
  EXPECT_EQ(Find(json),
            (std::vector<SecretMatch>{{json.find("-----BEGIN"), key.size(), "private-key"}}));
}

TEST(FindSecrets, APrivateKeyWithoutItsEndSpansToTheEndOfTheText) {
  const std::string text = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nnot the end " +
                           S(kGithub) + "\n-----END EC PRIVATE KEY-----\ntrailing";
  EXPECT_EQ(Find(text), (std::vector<SecretMatch>{{2, text.size() - 2, "private-key"}}));
}

TEST(FindSecrets, FindsTokensInBinaryData) {
  std::string data(
      "\x7f"
      "ELF\x02\x01\x01\0\0\0",
      10);
  data += std::string("\0\xff\xfe\xc3\x28\x80", 6) + S(kAwsKeyId);
  const size_t aws = data.size() - kAwsKeyId.size();
  data += std::string("\0\0\xe2\x82", 4) + S(kAnthropic);
  const size_t anthropic = data.size() - kAnthropic.size();
  data += std::string("\xf0\x9f\x98\0", 4) + "-----BEGIN PRIVATE KEY-----";
  const size_t key = data.size() - 27;
  data += std::string("\0\x01\x02\xff-----END PRIVATE KEY-----", 29);
  data += std::string("\xed\xa0\x80\0", 4);
  EXPECT_EQ(Find(data),
            (std::vector<SecretMatch>{{aws, kAwsKeyId.size(), "aws-access-key-id"},
                                      {anthropic, kAnthropic.size(), "anthropic-api-key"},
                                      {key, 27 + 29, "private-key"}}));
}

TEST(FindSecrets, ManyInOneTextComeInOrder) {
  const std::string text = S(kGithub) + " " + S(kAwsKeyId) + "\nAuthorization: Bearer " +
                           S(kBearer) + " " + S(kGoogle) +
                           ",AWS_SECRET_ACCESS_KEY=" + S(kAwsSecret) + "," + S(kSlack);
  std::vector<SecretMatch> found = Find(text);
  ExpectWellFormed(text, found);
  std::vector<std::string_view> kinds;
  for (const SecretMatch& m : found) kinds.push_back(m.kind);
  EXPECT_EQ(kinds, (std::vector<std::string_view>{"github-token", "aws-access-key-id",
                                                  "bearer-token", "google-api-key",
                                                  "aws-secret-access-key", "slack-token"}));
}

// Inputs that would make a backtracking or restarting scanner quadratic; they must simply end.
TEST(FindSecrets, RepeatedPrefixesWithoutBodiesEnd) {
  std::string prefixes;
  while (prefixes.size() < (1 << 20)) {
    prefixes += "sk-" + std::string(100, 'a') + " aws_secret_access_key=" + std::string(39, 'a') +
                " authorization: bearer abc -----BEGIN RSA PUBLIC KEY----- AKIA ";
  }
  EXPECT_EQ(Find(prefixes), std::vector<SecretMatch>{});
  std::string begins;
  while (begins.size() < (1 << 20)) begins += "-----BEGIN PRIVATE KEY-----\n";
  EXPECT_EQ(Find(begins), (std::vector<SecretMatch>{{0, begins.size(), "private-key"}}));
}

// Written with plain loops and memcpy: tens of megabytes stay quick in sanitizer builds.
std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n + 8, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t r = rng();
    std::memcpy(out.data() + i, &r, 8);
  }
  out.resize(n);
  return out;
}

std::string RandomFrom(std::mt19937_64& rng, std::string_view alphabet, size_t n) {
  char map[256];
  for (int b = 0; b < 256; ++b) map[b] = alphabet[b % alphabet.size()];
  std::string out = RandomBytes(rng, n);
  char* const end = out.data() + n;
  for (char* p = out.data(); p != end; ++p) *p = map[static_cast<unsigned char>(*p)];
  return out;
}

TEST(FindSecrets, ScansFiftyMegabytesOfRandomBytes) {
  std::mt19937_64 rng(1);
  std::string data = RandomBytes(rng, 50 << 20);
  const size_t planted = 37 << 20;
  const std::string token = " " + S(kGithub) + " ";
  data.replace(planted, token.size(), token);
  const std::vector<SecretMatch> found = Find(data);
  ExpectWellFormed(data, found);
  EXPECT_TRUE(std::any_of(found.begin(), found.end(), [&](const SecretMatch& m) {
    return m == SecretMatch{planted + 1, kGithub.size(), "github-token"};
  }));
}

TEST(FindSecrets, ScansAFiftyMegabyteLineOfLettersAndDigits) {
  std::mt19937_64 rng(2);
  std::string line = RandomFrom(rng, kAlnum, 50 << 20);
  line[0] = '0';
  EXPECT_EQ(Find(line), std::vector<SecretMatch>{});  // no boundary after the first byte
  line.replace(0, 4, "ghp_");
  EXPECT_EQ(Find(line), (std::vector<SecretMatch>{{0, line.size(), "github-token"}}));
}

// A secret to plant: `text` goes in, the match is expected at `offset` into it.
struct Plant {
  std::string text;
  size_t offset = 0;
  size_t length = 0;
  std::string_view kind;
};

Plant RandomSecret(std::mt19937_64& rng) {
  auto between = [&](size_t lo, size_t hi) { return lo + rng() % (hi - lo + 1); };
  auto token = [](std::string text, std::string_view kind) {
    const size_t length = text.size();
    return Plant{std::move(text), 0, length, kind};
  };
  auto with_digit = [&](std::string body) {
    body[rng() % body.size()] = static_cast<char>('0' + rng() % 10);
    return body;
  };
  switch (rng() % 16) {
    case 0:
      return token("AKIA" + RandomFrom(rng, kUpperDigits, 16), "aws-access-key-id");
    case 1:
      return token("ASIA" + RandomFrom(rng, kUpperDigits, 16), "aws-access-key-id");
    case 2:
      return token(
          std::string("gh") + "pousr"[rng() % 5] + "_" + RandomFrom(rng, kAlnum, between(30, 80)),
          "github-token");
    case 3:
      return token("github_pat_" + RandomFrom(rng, kAlnumUnderscore, between(40, 90)),
                   "github-token");
    case 4:
      return token("glpat-" + RandomFrom(rng, kWord, between(20, 40)), "gitlab-token");
    case 5:
      return token(std::string("xox") + "abprs"[rng() % 5] + "-" +
                       RandomFrom(rng, kAlnumDash, between(10, 60)),
                   "slack-token");
    case 6:
      return token("sk-ant-" + with_digit(RandomFrom(rng, kWord, between(20, 100))),
                   "anthropic-api-key");
    case 7:
      return token("sk-proj-" + with_digit(RandomFrom(rng, kWord, between(20, 100))),
                   "openai-api-key");
    case 8:
      return token("sk-" + with_digit("T" + RandomFrom(rng, kWord, between(19, 60))),
                   "openai-api-key");
    case 9:
      return token((rng() % 2 ? "sk_live_" : "rk_live_") + RandomFrom(rng, kAlnum, between(20, 99)),
                   "stripe-key");
    case 10:
      return token("npm_" + RandomFrom(rng, kAlnum, 36), "npm-token");
    case 11:
      return token("AIza" + RandomFrom(rng, kWord, 35), "google-api-key");
    case 12: {
      const std::string value = RandomFrom(rng, kBase64, 40);
      const std::string key = rng() % 2 ? "aws_secret_access_key = " : "AWS_SECRET_ACCESS_KEY=\"";
      return Plant{key + value + "\"", key.size(), value.size(), "aws-secret-access-key"};
    }
    case 13: {
      const std::string value = RandomFrom(rng, kBearerChars, between(16, 300));
      const std::string header = "Authorization: Bearer ";
      return Plant{header + value, header.size(), value.size(), "bearer-token"};
    }
    case 14: {
      const std::string label = (rng() % 2 ? "RSA " : "");
      std::string pem = "-----BEGIN " + label + "PRIVATE KEY-----\n";
      for (size_t lines = between(1, 30); lines > 0; --lines) {
        pem += RandomFrom(rng, kBase64, 64) + "\n";
      }
      return token(pem + "-----END " + label + "PRIVATE KEY-----", "private-key");
    }
    default: {
      std::string pem = "-----BEGIN OPENSSH PRIVATE KEY-----";
      for (size_t lines = between(1, 30); lines > 0; --lines) {
        pem += "\\n" + RandomFrom(rng, kBase64, 70);
      }
      return token(pem + "\\n-----END OPENSSH PRIVATE KEY-----", "private-key");
    }
  }
}

TEST(FindSecrets, FindsSecretsPlantedAtRandomOffsets) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937_64 rng(seed);
    // Filler: random bytes or random words, cut by spaces so a planted token has a boundary.
    std::string text;
    std::vector<std::pair<size_t, Plant>> planted;  // where each plant's text begins
    for (int i = 0; i < 300; ++i) {
      const size_t filler = rng() % 2000;
      text += rng() % 2 ? RandomBytes(rng, filler) : RandomFrom(rng, kFillerText, filler);
      text += rng() % 2 ? " " : "\n";
      Plant plant = RandomSecret(rng);
      planted.emplace_back(text.size(), plant);
      text += plant.text;
      text += rng() % 2 ? " " : "\n";
    }
    const std::vector<SecretMatch> found = Find(text);
    ExpectWellFormed(text, found);
    std::map<size_t, SecretMatch> by_offset;
    for (const SecretMatch& m : found) by_offset.emplace(m.offset, m);
    for (const auto& [at, plant] : planted) {
      auto it = by_offset.find(at + plant.offset);
      if (it == by_offset.end()) {
        ADD_FAILURE() << "not found at " << at + plant.offset << ": " << plant.text;
        continue;
      }
      EXPECT_EQ(it->second, (SecretMatch{at + plant.offset, plant.length, plant.kind}))
          << plant.text;
    }
  }
}

TEST(ConstantTimeEquals, EqualOnlyWhenEveryByteAndTheLengthAre) {
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  for (std::string_view given : {"s3cre", "s3cret ", "S3CRET", "", "t3cret"}) {
    EXPECT_FALSE(ConstantTimeEquals(given, "s3cret")) << given;
  }
  EXPECT_FALSE(ConstantTimeEquals("x", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("s3cret\0", 7), "s3cret"));
}

}  // namespace
}  // namespace nightshift
