// The Android library (AAR) of bucketsync's Kotlin bindings, and its Maven publication.
//
// It builds no Rust: it packages what `bindings-uniffi/package.sh --android` made, read from
// -PbucketsyncMobileDir (default: target/mobile/android at the top of the checkout):
//   jniLibs/<abi>/libbucketsync_uniffi.so     the phone builds (arm64-v8a, armeabi-v7a, x86_64;
//                                             release, no reqwest, 16 KB pages, minSdk 24)
//   kotlin/uniffi/bucketsync_uniffi/*.kt      the Kotlin generated from those libraries, plus
//                                             bindings-uniffi/kotlin/*.kt
// and compiles that Kotlin into the AAR's classes.jar. The version is bindings-uniffi's crate
// version, so the AAR and the libraries inside it cannot disagree.
//
//   bindings-uniffi/package.sh --android
//   cd bindings-uniffi/android && gradle assembleRelease           build/outputs/aar/*.aar
//   gradle publishReleasePublicationToBuildRepository              build/repo (a Maven layout)
//   gradle publishReleasePublicationToMavenRepository              MAVEN_REPOSITORY_URL (default:
//       GitHub Packages of GITHUB_REPOSITORY), with MAVEN_USERNAME / MAVEN_PASSWORD
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.13.0"
    id("org.jetbrains.kotlin.android") version "2.2.20"
    `maven-publish`
}

val repoRoot: File = rootDir.resolve("../..").canonicalFile
val mobileDir: File = providers.gradleProperty("bucketsyncMobileDir")
    .map { file(it) }
    .getOrElse(repoRoot.resolve("target/mobile/android"))

// `version = "x.y.z"`, the first one in bindings-uniffi/Cargo.toml (its [package] section).
val crateVersion: String = repoRoot.resolve("bindings-uniffi/Cargo.toml").readLines()
    .first { it.trimStart().startsWith("version") }
    .substringAfter('"').substringBefore('"')

group = "io.github.bucketsync"
version = crateVersion

android {
    namespace = "uniffi.bucketsync_uniffi"
    compileSdk = 35

    defaultConfig {
        // The API level package.sh links the libraries for (its ANDROID_API default).
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        java.srcDir(mobileDir.resolve("kotlin"))
        jniLibs.srcDir(mobileDir.resolve("jniLibs"))
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_11)
    }
}

dependencies {
    // The generated bindings call the library through JNA; on Android its AAR carries
    // libjnidispatch.so for each ABI (5.17.0 and later: aligned for 16 KB pages).
    api("net.java.dev.jna:jna:5.17.0@aar")
    // suspend functions, Flow (Events.kt) and Dispatchers in the public API.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
}

// Stops with a clear message instead of an AAR without libraries or classes.
val checkNativeInputs by tasks.registering {
    val dir = mobileDir
    doLast {
        val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        val missing = abis.map { dir.resolve("jniLibs/$it/libbucketsync_uniffi.so") }.filterNot { it.isFile } +
            listOf(dir.resolve("kotlin/uniffi/bucketsync_uniffi/bucketsync_uniffi.kt")).filterNot { it.isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "missing ${missing.joinToString()}: run bindings-uniffi/package.sh --android first " +
                    "(or pass -PbucketsyncMobileDir=<its OUT>/android)",
            )
        }
    }
}
tasks.named("preBuild") { dependsOn(checkNativeInputs) }

publishing {
    publications {
        register<MavenPublication>("release") {
            artifactId = "bucketsync-android"
            afterEvaluate { from(components["release"]) }
            pom {
                name.set("bucketsync for Android")
                description.set(
                    "End-to-end encrypted key-value and file sync through an S3-compatible bucket: " +
                        "the Kotlin bindings (uniffi) and the native library for arm64-v8a, armeabi-v7a and x86_64",
                )
                url.set("https://github.com/bucketsync/bucketsync")
                licenses {
                    license {
                        name.set("MIT")
                        url.set("https://opensource.org/licenses/MIT")
                    }
                    license {
                        name.set("Apache-2.0")
                        url.set("https://www.apache.org/licenses/LICENSE-2.0")
                    }
                }
                scm {
                    url.set("https://github.com/bucketsync/bucketsync")
                    connection.set("scm:git:https://github.com/bucketsync/bucketsync.git")
                }
                developers {
                    developer {
                        name.set("The bucketsync authors")
                        url.set("https://github.com/bucketsync/bucketsync")
                    }
                }
            }
        }
    }
    repositories {
        // A Maven layout inside build/, attached to the GitHub release.
        maven {
            name = "build"
            url = uri(layout.buildDirectory.dir("repo"))
        }
        maven {
            name = "maven"
            // Unset and empty (a GitHub variable that does not exist) both mean the default.
            fun env(name: String): String? = System.getenv(name)?.takeIf { it.isNotBlank() }
            val github = env("GITHUB_REPOSITORY") ?: "bucketsync/bucketsync"
            url = uri(env("MAVEN_REPOSITORY_URL") ?: "https://maven.pkg.github.com/$github")
            credentials {
                username = System.getenv("MAVEN_USERNAME")
                password = System.getenv("MAVEN_PASSWORD")
            }
        }
    }
}
