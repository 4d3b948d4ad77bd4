// A cassette per test in plain Java (JDK 11+, no JUnit, no packages) with llm-vcr sessions.
//
// Run it through llm-vcr, which starts the proxy and gives every JVM the proxy and a trust store
// holding its CA (JAVA_TOOL_OPTIONS):
//
//   llm-vcr run --dir cassettes -- java CassettePerTest.java
//
// (or against a running `llm-vcr serve`: eval "$(llm-vcr env)"; java CassettePerTest.java).
// Each test runs in a session named "java/<test name>", opened and closed through the control
// API; its requests carry the X-VCR-Session header. A request that found no recorded answer
// fails the test with the proxy's explanation. With JUnit, do the same in a BeforeEach/AfterEach
// extension, using the test's display name.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class CassettePerTest {
    static final String CONTROL = "http://llm-vcr.invalid/v1/sessions"; // only the proxy answers
    // The default proxy selector reads -Dhttps.proxyHost/-Dhttp.proxyHost (JAVA_TOOL_OPTIONS).
    static final HttpClient HTTP = HttpClient.newHttpClient();

    interface Test {
        void run(String session) throws Exception;
    }

    /** Runs `test` in its own session on cassette java/NAME; returns whether it passed. */
    static boolean cassetteTest(String name, Test test) {
        try {
            HttpResponse<String> opened = HTTP.send(
                HttpRequest.newBuilder(URI.create(CONTROL))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"cassette\": \"java/" + name + "\"}"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
            if (opened.statusCode() != 201) {
                throw new IllegalStateException("llm-vcr: opening a session answered " + opened.statusCode());
            }
            Matcher id = Pattern.compile("\"session\":\\s*\"([^\"]+)\"").matcher(opened.body());
            id.find();
            String session = id.group(1);
            Throwable failure = null;
            try {
                test.run(session);
            } catch (Exception | AssertionError e) {
                failure = e;
            }
            String report = HTTP.send(
                HttpRequest.newBuilder(URI.create(CONTROL + "/" + session)).DELETE().build(),
                HttpResponse.BodyHandlers.ofString()).body();
            // The report's totals: {"replayed": N, "recorded": N, "missed": N, "unused": N}.
            Matcher missed = Pattern.compile("\"totals\":\\s*\\{[^}]*\"missed\":\\s*(\\d+)").matcher(report);
            if (missed.find() && !missed.group(1).equals("0")) {
                throw new AssertionError("llm-vcr: requests found no recorded answer: " + report);
            }
            if (failure != null) {
                System.out.println("FAILED " + name + ": " + failure);
                return false;
            }
            System.out.println("ok " + name);
            return true;
        } catch (Exception | AssertionError e) {
            System.out.println("FAILED " + name + ": " + e);
            return false;
        }
    }

    static String ask(String session, String prompt) throws Exception {
        String body = "{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\", \"content\": \""
            + prompt + "\"}]}";
        HttpResponse<String> response = HTTP.send(
            HttpRequest.newBuilder(URI.create("https://api.openai.com/v1/chat/completions"))
                .header("X-VCR-Session", session)
                .header("Content-Type", "application/json")
                .header("Authorization", "Bearer sk-test-not-a-real-key")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new AssertionError("status " + response.statusCode() + ": " + response.body());
        }
        Matcher content = Pattern.compile("\"content\":\\s*\"([^\"]*)\"").matcher(response.body());
        if (!content.find()) {
            throw new AssertionError("unexpected answer: " + response.body());
        }
        return content.group(1);
    }

    static void expect(String got, String want) {
        if (!got.equals(want)) {
            throw new AssertionError("got '" + got + "', want '" + want + "'");
        }
    }

    public static void main(String[] args) {
        Map<String, Test> tests = new LinkedHashMap<>();
        tests.put("greeting", session -> expect(ask(session, "Hello from Java"), "Echo: Hello from Java"));
        tests.put("farewell", session -> expect(ask(session, "Goodbye from Java"), "Echo: Goodbye from Java"));
        boolean passed = true;
        for (Map.Entry<String, Test> test : tests.entrySet()) {
            passed &= cassetteTest(test.getKey(), test.getValue());
        }
        System.exit(passed ? 0 : 1);
    }
}
